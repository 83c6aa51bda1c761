"""The REST shim: HTTP/JSON to gRPC transcoding from google.api.http annotations."""
