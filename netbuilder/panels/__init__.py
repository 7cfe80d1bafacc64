"""Side panels of the training workflow: Data, Training and Runs."""
