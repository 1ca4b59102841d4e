"""What an answer says, beyond its text: the JSON of a structured-output answer, checked
against the request's schema (:mod:`.schema`).  Imports nothing of ours but the errors, so that
types.py can use it without an import circle."""
