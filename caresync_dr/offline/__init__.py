"""Run the Pulumi program offline under realistic mocks (tests, drills, CI previews)."""
