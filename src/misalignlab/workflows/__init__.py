"""Whole jobs that write a run folder: the simulation sweep, the image–text lab, compare, diagnose, the
detection benchmark, the pilot and its decision check. Each reads data, calls the stages below it
(data → models → train → detect → strategies → evaluate → pilot) and hands results to ``report``."""
