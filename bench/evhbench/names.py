"""Names and limits the load scenarios share: the channel the bench plugin
runs read, the list its result lines go to, evhost's in-flight limit."""

RESULT_KEY = "bench:results"
CHANNEL = "bench:events"  # with environment "bench": the Redis name is bench:bench:events
ENVIRONMENT = "bench"
REDIS_NAME = f"{ENVIRONMENT}:{CHANNEL}"
MAX_IN_FLIGHT = 10000  # evhost's default, written out
