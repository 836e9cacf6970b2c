"""Use cases: each opens one unit of work, calls the domain and the store, and commits.

The CLI, the web and the tests all come in through here.
"""
