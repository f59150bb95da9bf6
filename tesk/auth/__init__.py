"""Who calls TESK: HTTP Basic users from a file of Argon2 hashes, or bearer JWTs of an OIDC issuer.

Nothing here imports the HTTP layer; tesk/api/security.py wires these checks into Connexion.
"""
