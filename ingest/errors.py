"""Why a definition could not be read: where, and what is wrong."""


class DefinitionError(ValueError):
    """The input is not a valid definition of the claimed format."""

    def __init__(self, message: str, *, path: str = "$") -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
