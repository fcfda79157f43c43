"""The WebUI side, duck-typed (it never imports the WebUI): the settings table, argument parsing,
infotext, X/Y/Z axes, the adapter that runs a generation, and the run preview's host side."""
