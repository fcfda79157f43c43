"""The one exception type of the library, so callers (the WebUI glue, the CLI) can turn any bad input into a message."""


class ChangeMapError(ValueError):
    """Raised for any input the library cannot use: an undecodable or empty map, NaN values, an absurd size,
    a malformed parameter. The message names the problem in words a user can act on."""
