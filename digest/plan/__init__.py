"""Planning: what each profile's next digest holds.

`digest.plan.decide` is the pure decider (data in, a `Digest` out; no store, no clock, no I/O:
importing it loads neither); `digest.plan.planning.PlanPass` reads its inputs from the store
once per pass and runs it.
"""
