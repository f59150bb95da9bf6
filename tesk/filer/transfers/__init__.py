"""One Transfer per URL scheme family: file, http(s), ftp(s), s3."""
