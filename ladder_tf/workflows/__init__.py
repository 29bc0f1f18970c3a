"""Workflows: training, evaluation, reproduction, export, interpolation and sampling.

The layer between the commands (argument parsing, exit codes) and the model. A workflow
takes settled arguments (a config, paths, data) and raises exceptions; it never parses a
command line nor exits the process.
"""
