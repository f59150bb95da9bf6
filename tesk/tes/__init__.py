"""The TES domain: models, states, views and validation. Pure: no web, database or cluster code."""
