"""A client of any TES v1.1 server: the HTTP client (http.py) and the `tesk` client commands."""
