"""Start real marketcache processes and wait until they serve: shared by tests/ and bench/.

Neither a test nor a runtime module, so the benchmarks need not import the tests
(and nothing here imports either). `process` spawns one child on ephemeral ports,
`readiness` waits for its ready file and health (plain or TLS), `services` puts the
two together as `start_service` and `running`; `image` builds deploy/Dockerfile with
podman (`make image` and the image test).
"""
