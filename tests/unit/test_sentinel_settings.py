"""PERSAI_REDIS_SENTINELS: checked once, and the same master for the API, workers and Celery."""

import pytest
from pydantic import ValidationError

from persai.config import Settings
from persai.queue import broker_url, create_celery
from persai.redis_client import connect_to


@pytest.mark.parametrize("given", ["sentinel-0", "sentinel-0:", "sentinel-0:port", ":26379", "h:0"])
def test_a_sentinel_that_is_no_host_and_port_is_refused(given: str) -> None:
    with pytest.raises(ValidationError, match="is not host:port"):
        Settings(auth=False, redis_sentinels=given)


def test_sentinels_name_the_master_for_the_api_workers_and_celery() -> None:
    settings = Settings(
        auth=False,
        redis_url="redis://persai:s3cret@ignored:6379/2",
        redis_sentinels="s0:26379, s1:26380,[::1]:26381",
        redis_master_name="primary",
    )
    assert settings.sentinels == [("s0", 26379), ("s1", 26380), ("::1", 26381)]
    pool = connect_to(settings, patience_s=1.0, max_connections=8).connection_pool
    assert pool.service_name == "primary"  # type: ignore[attr-defined]
    assert pool.connection_kwargs["db"] == 2
    assert pool.connection_kwargs["password"] == "s3cret"
    assert "host" not in pool.connection_kwargs  # asked of the Sentinels at each connect
    url = broker_url(settings, str(settings.redis_url))
    assert url.split(";") == [
        "sentinel://persai:s3cret@s0:26379/2",
        "sentinel://persai:s3cret@s1:26380/2",
        "sentinel://persai:s3cret@[::1]:26381/2",
    ]
    app = create_celery(settings, str(settings.redis_url))
    assert app.conf.broker_transport_options["master_name"] == "primary"
    assert app.conf.broker_url.startswith("sentinel://")


def test_sentinels_alone_need_no_redis_url() -> None:
    settings = Settings(auth=False, redis_sentinels="s0:26379")
    assert settings.redis_url is not None
    pool = connect_to(settings, patience_s=1.0, max_connections=8).connection_pool
    assert pool.connection_kwargs["db"] == 0
