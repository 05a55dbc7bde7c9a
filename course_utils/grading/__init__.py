"""Running the course's notebooks: release, self-check and classroom grading (the ``course`` command)."""
