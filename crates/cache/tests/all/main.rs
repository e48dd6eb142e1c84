//! Integration tests of the result cache against a real `redis-server` (Debian's package,
//! installed by `scripts/setup.sh`), each test with its own server on a unix socket in a
//! temporary directory, killed when the test ends.

mod redis;

mod redis_server;

pub(crate) use redis_server::RedisServer;
