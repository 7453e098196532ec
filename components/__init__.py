"""One pulumi.ComponentResource per concern; ``site.py`` composes them for a stack."""
