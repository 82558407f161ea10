"""Why a definition could not be read: where, and what is wrong."""


class DefinitionError(ValueError):
    """The input is not a valid definition of the claimed format."""

    def __init__(self, message: str, *, path: str = "$") -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class ImporterFailure(DefinitionError):
    """An importer failed on a definition in a way it does not check for: still a clear refusal for the
    caller, but a bug in PageForge to fix (logged as an error, and what the fuzz tests look for)."""
