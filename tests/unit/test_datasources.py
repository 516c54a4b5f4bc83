import pytest

from persai.config import Settings
from persai.datasources import parse_datasource, resolve
from persai.errors import InvalidRequest


@pytest.mark.parametrize(
    ("path", "project", "name"),
    [
        ("/proxy/globaldatasources/prom", None, "prom"),
        ("/proxy/projects/shop/datasources/prometheus", "shop", "prometheus"),
        ("/proxy/projects/shop/dashboards/checkout/datasources/prom-1", "shop", "prom-1"),
        ("/proxy/projects/shop/datasources/prometheus/", "shop", "prometheus"),
        # names as Perses validates them: ^[a-zA-Z0-9_.-]+$, at most 75, no '.' at either end
        ("/proxy/projects/_ops/datasources/_prom", "_ops", "_prom"),
        ("/proxy/projects/shop/datasources/a..b", "shop", "a..b"),
        ("/proxy/globaldatasources/" + "a" * 75, None, "a" * 75),
    ],
)
def test_valid_proxy_paths_name_their_datasource(path: str, project: str | None, name: str) -> None:
    parsed = parse_datasource(path)
    assert (parsed.project, parsed.name) == (project, name)


@pytest.mark.parametrize(
    "path",
    [
        "http://evil.example/api",
        "//evil.example/proxy/globaldatasources/prom",
        "/proxy/globaldatasources/../../admin",
        "/proxy/globaldatasources/..",
        "/proxy/globaldatasources/.hidden",
        "/proxy/globaldatasources/prom.",
        "/proxy/projects/./datasources/prom",
        "/proxy/globaldatasources/" + "a" * 76,
        "/proxy/globaldatasources/prom?x=1",
        "/proxy/globaldatasources/prom#x",
        "/proxy/globaldatasources/prom/api/v1/query",
        "/proxy/projects/shop/datasources",
        "/proxy/globaldatasources/pr om",
        "",
        "/proxy/globaldatasources/" + "a" * 600,
    ],
)
def test_anything_but_a_proxy_path_is_refused(path: str) -> None:
    with pytest.raises(InvalidRequest, match="Perses proxy path"):
        parse_datasource(path)


@pytest.mark.parametrize(
    "given", ["/perses/proxy/globaldatasources/prom", "/proxy/globaldatasources/prom"]
)
def test_a_path_under_perses_api_prefix_is_accepted_with_the_prefix_or_without(given: str) -> None:
    settings = Settings(perses_api_url="http://perses:8080/perses/", auth=False)
    parsed = parse_datasource(given, settings.perses_api_prefix)
    assert parsed.path == "/proxy/globaldatasources/prom"
    endpoint = resolve(parsed, settings)
    assert endpoint.base_url == "http://perses:8080/perses/proxy/globaldatasources/prom"


@pytest.mark.parametrize(
    "given",
    [
        "/other/proxy/globaldatasources/prom",
        "/perses/api/v1/projects",
        "/persesx/proxy/globaldatasources/p",
    ],
)
def test_another_prefix_is_refused_and_the_message_names_the_right_one(given: str) -> None:
    with pytest.raises(InvalidRequest, match="/perses/proxy/globaldatasources/"):
        parse_datasource(given, "/perses")


def test_configured_datasource_goes_direct_without_the_users_token() -> None:
    settings = Settings(datasources={"prom": "http://127.0.0.1:9090"}, auth=False)
    endpoint = resolve(parse_datasource("/proxy/globaldatasources/prom"), settings)
    assert endpoint.base_url == "http://127.0.0.1:9090"
    assert not endpoint.via_perses


KEY = "a sealing key of thirty-two bytes or more"


def test_other_datasources_go_through_perses_proxy() -> None:
    settings = Settings(
        perses_api_url="http://perses:8080", secret_key=KEY, datasources={"prom": "http://p:9090"}
    )
    endpoint = resolve(parse_datasource("/proxy/projects/shop/datasources/prom"), settings)
    assert endpoint.base_url == "http://perses:8080/proxy/projects/shop/datasources/prom"
    assert endpoint.via_perses


def test_unknown_datasource_without_perses_is_a_clear_error() -> None:
    settings = Settings(datasources={"prom": "http://p:9090"}, auth=False)
    with pytest.raises(InvalidRequest, match="configured datasources are: prom"):
        resolve(parse_datasource("/proxy/globaldatasources/other"), settings)


def test_with_perses_deciding_a_direct_datasource_name_goes_to_perses_with_the_token() -> None:
    settings = Settings(
        perses_api_url="http://perses:8080", secret_key=KEY, datasources={"demo": "http://p:9090"}
    )
    endpoint = resolve(parse_datasource("/proxy/globaldatasources/demo"), settings)
    assert endpoint.base_url == "http://perses:8080/proxy/globaldatasources/demo"
    assert endpoint.via_perses


def test_direct_datasources_beside_perses_only_when_the_operator_opts_in() -> None:
    settings = Settings(
        perses_api_url="http://perses:8080",
        secret_key=KEY,
        datasources={"demo": "http://p:9090"},
        direct_datasources_with_perses=True,
    )
    endpoint = resolve(parse_datasource("/proxy/globaldatasources/demo"), settings)
    assert endpoint.base_url == "http://p:9090"
    assert not endpoint.via_perses
