"""Security tests: TLS and mTLS on every gRPC link, admin tokens, secrets kept out of output."""
