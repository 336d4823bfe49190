"""The local web gallery (`photokit serve`): see and fix who is who, priors, restorations, background jobs.

A presentation layer only: every action calls the same library functions as the CLI.
"""
