from forklift.registry.challenge import parse_challenges


def test_bearer_with_quoted_commas_and_escapes():
    [challenge] = parse_challenges(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:a/b:pull,push",error="insufficient_scope",note="say \\"hi\\", ok"'
    )
    assert challenge.scheme == "bearer"
    assert challenge.realm == "https://auth.example.com/token"
    assert challenge.service == "registry.example.com"
    assert challenge.scopes == ["repository:a/b:pull,push"]
    assert challenge.error == "insufficient_scope"
    assert challenge.params["note"] == 'say "hi", ok'


def test_basic_realm_and_several_challenges_in_one_header():
    challenges = parse_challenges('Basic realm="basic-realm", Bearer realm="https://t/token", service=reg')
    assert [c.scheme for c in challenges] == ["basic", "bearer"]
    assert challenges[0].realm == "basic-realm"
    assert challenges[1].service == "reg"


def test_ecr_style_basic_with_service():
    [challenge] = parse_challenges('Basic realm="https://1.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"')
    assert challenge.params == {"realm": "https://1.dkr.ecr.us-east-1.amazonaws.com/", "service": "ecr.amazonaws.com"}


def test_parameter_names_are_case_insensitive_and_space_tolerant():
    [challenge] = parse_challenges('BEARER  Realm = "r" ,  Service="s"')
    assert challenge.scheme == "bearer" and challenge.realm == "r" and challenge.service == "s"


def test_garbage_yields_nothing_useful():
    assert [c.params for c in parse_challenges("")] == []
