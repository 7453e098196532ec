"""Print the rules table of docs/aws-rules.md: ``python -m caresync_dr.emulation.aws_rules``."""

import sys

from caresync_dr.emulation.aws_rules import rules_table

sys.stdout.write(rules_table())
