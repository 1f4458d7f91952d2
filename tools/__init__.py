"""HIL plant simulator and bench, benchmark and report tools. May import `edge` and `rtcore`."""
