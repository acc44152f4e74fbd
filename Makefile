# Strathon-TS operator shortcuts. `make` alone lists the targets.
# Compose v1 users: make up COMPOSE=docker-compose
COMPOSE ?= docker compose
UP_TIMEOUT ?= 180

.DEFAULT_GOAL := help
.PHONY: help up logs down reset dev test bench lint

help: ## List the targets with a one-line description
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /\1\t/' | awk -F '\t' '{ printf "  %-7s %s\n", $$1, $$2 }'

up: ## docker compose up -d (creates .env from .env.example if missing), then show the receiver logs until its banner
	@test -f .env || { cp .env.example .env && echo "make: created .env from .env.example; set its secrets before production (README: Production checklist)"; }
	$(COMPOSE) up -d --build || { $(COMPOSE) logs --tail=60 receiver; exit 1; }
	@$(COMPOSE) logs -f --no-log-prefix receiver & follower=$$!; \
	trap 'kill $$follower 2>/dev/null' EXIT; \
	i=0; \
	while [ $$i -lt $(UP_TIMEOUT) ]; do \
	  if $(COMPOSE) logs --no-log-prefix receiver 2>/dev/null | grep -q 'is up'; then sleep 1; exit 0; fi; \
	  i=$$((i + 1)); sleep 1; \
	done; \
	echo "make up: no banner from the receiver after $(UP_TIMEOUT) s; see: make logs" >&2; exit 1

logs: ## Follow the logs of every service (Ctrl-C to stop)
	$(COMPOSE) logs -f --tail=100

down: ## Stop and remove the containers (the Postgres volume is kept)
	$(COMPOSE) down

reset: ## DELETE the Postgres volume (all data), then make up again
	$(COMPOSE) down -v
	$(MAKE) up

dev: ## Run without Docker: receiver (embedded Postgres unless DATABASE_URL) and dashboard
	npm start

test: ## The whole test suite against a real Postgres
	npm test

bench: ## Benchmarks (results in bench/RESULTS.md)
	npm run bench

lint: ## Type-check and eslint
	npm run lint
