from lti_tool.domain.launch import AgsEndpoint, DeepLinkingSettings, LaunchContext


def test_launch_context_round_trips_through_json() -> None:
    ctx = LaunchContext(
        launch_id="abc",
        message_type="deep_linking",
        issuer="https://lms.example.org",
        client_id="c",
        deployment_id="1",
        sub="s",
        roles=frozenset({"mentor", "coordinator"}),
        locale="fr-CA",
        registration_pk=1,
        deployment_pk=2,
        lti_roles=("http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",),
        custom={"dataide_item": "m01-maturite"},
        ags=AgsEndpoint(scopes=("a", "b"), lineitems_url="https://x/li", lineitem_url=None),
        deep_linking=DeepLinkingSettings(
            return_url="https://x/dl", accept_types=("ltiResourceLink",), data="909708"
        ),
        user_pk=7,
    )
    again = LaunchContext.from_json(ctx.to_json())
    assert again == ctx
    assert again.is_mentor and again.is_coordinator
