"""Course machinery: what runs the course, which a learner never needs to open.

assets (where datasets and weights come from, checked into the cache), images (the decode
cache and split folders under tlutils.data), profiles (the settings each machine gets), run
and report (execute the notebooks and collect their numbers) and cli (the `python3 -m
tlutils` command line).
"""
