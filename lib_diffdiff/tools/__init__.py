"""Tools around the core: the strength fan, the run preview (foresee), the schedule picture, CAM/DAM
metrics and the command line."""
