"""User-facing errors: one base class, so command-line tools print one line and exit non-zero.

A message names the file, field or value at fault and says what was expected. Programming errors are not
`PipelineError`s and keep their tracebacks.
"""


class PipelineError(Exception):
    """A problem with the user's input (a spec, a data folder, a CSV): print `str(err)` and exit 2."""


class SpecError(PipelineError):
    """A spec or sweep file is malformed or holds an out-of-range value."""


class DataError(PipelineError):
    """A data set, model folder or download is missing, corrupted or in an unexpected format."""
