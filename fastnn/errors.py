"""The one error type fastnn raises for anything a user can get wrong."""


class FastnnError(ValueError):
    """Bad input, a bad setting, a bad file or a failed download: the message names the problem.

    A ValueError, so Python callers can catch it as the usual error for a bad argument. The
    command line prints it as one line and exits with status 2; no traceback.
    """
