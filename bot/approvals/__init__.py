"""Team approvals: a request, votes, and an action run exactly once when the quorum is reached.

requests.py opens a request (its message goes through the outbox), votes.py applies the domain rules
of a click, execution.py runs the action once and records its outcome, actions.py maps each kind to
what it does (delete a model, start a job), expiry.py is the worker's sweep, audit.py the log.
"""
