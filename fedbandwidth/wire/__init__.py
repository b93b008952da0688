"""On the wire: the Flower App on a local Deployment Engine (processes, commands, engine, report), the same app
in `flwr run`'s simulation (app_simulation), byte-counting relays, TLS material, and link models (links, plots)."""
