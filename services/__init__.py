"""marketcache: a Durable-Objects-style cache for market data, as gRPC microservices."""
