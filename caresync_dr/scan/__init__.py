"""The security scan: Checkov over the Terraform plan export of both stacks, with reviewed skips."""
