"""HTTP only: the TES OpenAPI document and patch, thin controllers, probes, error mapping."""
