"""Training from the GUI: the worker thread, the run controller and the runs of a session."""
