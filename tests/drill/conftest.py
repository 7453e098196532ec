from tests.emulation.fixtures import aws, emulator

__all__ = ["aws", "emulator"]
