"""In-memory fakes of amibake's interfaces to the outside world, for unit tests (no AWS, no moto)."""
