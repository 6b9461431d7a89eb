# The two commands of the README: `make demo` runs the system, `make test` runs every test.
.PHONY: demo test faults stack-up stack-down status lint contracts asyncapi-docs bench clients

demo:
	bash scripts/demo.sh $(ARGS)

test:
	bash scripts/test.sh $(ARGS)

# The slow fault drills (marker `faults`, left out of `make test`): brokers, PostgreSQL and replicas killed.
faults:
	bash scripts/bootstrap.sh && .venv/bin/python -m pytest -p no:cacheprovider -m faults tests $(ARGS)

stack-up:
	bash scripts/bootstrap.sh && .venv/bin/python -m shared.devstack up

stack-down:
	.venv/bin/python -m shared.devstack down

status:
	.venv/bin/python -m shared.devstack status

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy .

contracts:
	.venv/bin/python -m tools.docs
	bash scripts/asyncapi.sh validate docs/asyncapi.yaml

asyncapi-docs:
	bash scripts/asyncapi.sh render docs/asyncapi.yaml docs/asyncapi-html

# Typed clients (TypeScript and Python) generated from the OpenAPI documents the running gateway serves.
clients:
	bash scripts/clients.sh typescript $${GATEWAY_URL:-http://127.0.0.1:$${GATEWAY_HTTP_PORT:-8100}} clients/generated/typescript
	bash scripts/clients.sh python $${GATEWAY_URL:-http://127.0.0.1:$${GATEWAY_HTTP_PORT:-8100}} clients/generated/python
