"""The wide secret corpus: every provider's secrets in every common file syntax, and look-alikes.

Each secret is random (seeded, so the corpus is the same on every run) in its provider's documented
shape: prefix, length, alphabet, separators. None is a real credential. Each is written in every
syntax of SYNTAXES (.env, shell, YAML, JSON, TOML, INI, Python, JS/TS, Go, Java, PHP, Ruby,
Makefile, XML, Dockerfile, compose, Kubernetes, curl, HTTP, Markdown). The look-alikes hold no
credential, or only a dummy, in the same syntaxes.

    python -m tests.data.secrets.corpus      # prints the corpus size
    python -m tests.data.secrets.report      # recall per syntax and provider, false alarms per kind
"""
from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass

SEED = 20261201
LOWER, UPPER, DIGITS = string.ascii_lowercase, string.ascii_uppercase, string.digits
B62 = DIGITS + UPPER + LOWER
HEX = "0123456789abcdef"
B64 = UPPER + LOWER + DIGITS + "+/"
B64URL = UPPER + LOWER + DIGITS + "-_"
LOWNUM = LOWER + DIGITS
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
# A random value could spell one of these by chance and then look like a dummy.
AVOID = ("example", "xxxx", "your", "fake", "dummy", "sample", "test", "sandbox", "1234", "abcd", "short",
         "placeholder", "change", "redact", "secret", "passw", "token")


@dataclass(frozen=True)
class Case:
    group: str     # provider (positives) or look-alike kind
    syntax: str
    text: str
    start: int     # where the secret (as written: raw, escaped or encoded) sits in text; -1: none
    end: int


class Maker:
    """Random values in a provider's shape, from one seeded generator."""

    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)

    def r(self, alphabet: str, n: int) -> str:
        while True:
            value = "".join(self.rng.choice(alphabet) for _ in range(n))
            if not any(a in value.lower() for a in AVOID):
                return value

    def digits(self, n: int) -> str:
        return str(self.rng.randint(1, 9)) + self.r(DIGITS, n - 1)

    def uuid(self) -> str:
        return "-".join(self.r(HEX, n) for n in (8, 4, 4, 4, 12))

    def b64(self, data: bytes) -> str:
        return base64.b64encode(data).decode()

    def b64url(self, data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    def jwt(self, alg: str = "HS256") -> str:
        header = self.b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
        claims = {"sub": self.digits(10), "iat": self.rng.randint(1_600_000_000, 1_800_000_000),
                  "role": self.rng.choice(["service_role", "admin", "deploy"])}
        signature = "" if alg == "none" else self.b64url(self.rng.randbytes(32))
        return f"{header}.{self.b64url(json.dumps(claims).encode())}.{signature}"

    def pem(self, label: str, nbytes: int) -> str:
        body = self.b64(self.rng.randbytes(nbytes))
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"])

    def password(self) -> str:
        return (self.r(LOWER, 4).capitalize() + self.r(DIGITS, 3) + self.rng.choice("!*~+^")
                + self.r(LOWER + UPPER, 5) + self.r(DIGITS, 2))


# provider -> [(variable-name words, value factory)]; several formats per provider where it has several
Factory = Callable[[Maker], str]
PROVIDERS: dict[str, list[tuple[str, Factory]]] = {
    # source control, packages, CI
    "github": [("github token", lambda m: "ghp_" + m.r(B62, 36)), ("gh oauth token", lambda m: "gho_" + m.r(B62, 36)),
               ("github app token", lambda m: "ghs_" + m.r(B62, 36)),
               ("github pat", lambda m: f"github_pat_{m.r(B62, 22)}_{m.r(B62, 59)}")],
    "gitlab": [("gitlab token", lambda m: "glpat-" + m.r(B62 + "_-", 20)),
               ("gitlab runner token", lambda m: "glrt-" + m.r(B62 + "_", 20)),
               ("gitlab trigger token", lambda m: "glptt-" + m.r(HEX, 40)),
               ("gitlab runner registration token", lambda m: "GR1348941" + m.r(B62 + "_-", 20))],
    "bitbucket": [("bitbucket app password", lambda m: "ATBB" + m.r(B62, 32)),
                  ("bitbucket access token", lambda m: "ATCTT3xFfGN0" + m.r(B64URL, 171) + "=" + m.r(HEX.upper(), 8))],
    "atlassian": [("jira api token", lambda m: "ATATT3xFfGF0" + m.r(B64URL, 171) + "=" + m.r(HEX.upper(), 8))],
    "npm": [("npm token", lambda m: "npm_" + m.r(B62, 36))],
    "pypi": [("pypi token", lambda m: "pypi-AgEIcHlwaS5vcmc" + m.r(B64URL, 120))],
    "rubygems": [("gem host api key", lambda m: "rubygems_" + m.r(HEX, 48))],
    "nuget": [("nuget api key", lambda m: "oy2" + m.r(LOWNUM, 43))],
    "docker": [("docker hub token", lambda m: "dckr_pat_" + m.r(B64URL, 27)),
               ("docker hub org token", lambda m: "dckr_oat_" + m.r(B64URL, 32))],
    "docker-swarm": [("swarm join token", lambda m: f"SWMTKN-1-{m.r(LOWNUM, 50)}-{m.r(LOWNUM, 25)}"),
                     ("swarm unlock key", lambda m: "SWMKEY-1-" + m.r(B62 + "+/", 43))],
    "jfrog": [("artifactory api key", lambda m: "AKCp" + m.r(B62, 69)),
              ("jfrog access token", lambda m: "cmVmdGtuOjAxOj" + m.r(B62, 50))],
    "clojars": [("clojars token", lambda m: "CLOJARS_" + m.r(HEX, 60))],
    "pulumi": [("pulumi access token", lambda m: "pul-" + m.r(HEX, 40))],
    "terraform": [("tfe token", lambda m: m.r(B62, 14) + ".atlasv1." + m.r(B62 + "_-", 67))],
    "hashicorp-vault": [("vault token", lambda m: "hvs." + m.r(B62 + "_-", 90)),
                        ("vault batch token", lambda m: "hvb." + m.r(B62 + "_-", 120))],
    "doppler": [("doppler token", lambda m: "dp.pt." + m.r(B62, 43)), ("doppler service token", lambda m: "dp.st.prd." + m.r(B62, 40))],
    "sonarqube": [("sonar token", lambda m: m.rng.choice(["squ_", "sqp_", "sqa_"]) + m.r(HEX, 40))],
    "snyk": [("snyk token", lambda m: m.uuid())],
    "buildkite": [("buildkite agent token", lambda m: "bkua_" + m.r(HEX, 40))],
    "circleci": [("circle token", lambda m: "CCIPAT_" + m.r(B62, 22) + "_" + m.r(HEX, 40))],
    "travis": [("travis token", lambda m: m.r(B62, 22))],
    "octopus": [("octopus api key", lambda m: "API-" + m.r(UPPER + DIGITS, 27))],
    "harness": [("harness token", lambda m: f"pat.{m.r(B62, 22)}.{m.r(HEX, 24)}.{m.r(B62, 20)}")],
    "launchdarkly": [("launchdarkly api key", lambda m: "api-" + m.uuid()), ("ld sdk key", lambda m: "sdk-" + m.uuid())],
    "codecov": [("codecov token", lambda m: m.uuid())],
    "postman": [("postman api key", lambda m: f"PMAK-{m.r(HEX, 24)}-{m.r(HEX, 34)}")],
    "prefect": [("prefect api key", lambda m: "pnu_" + m.r(B62, 36))],
    "infracost": [("infracost api key", lambda m: "ico-" + m.r(B62, 32))],
    "readme": [("readme api key", lambda m: "rdme_" + m.r(HEX, 70))],
    "dbt": [("dbt cloud token", lambda m: "dbtc_" + m.r(B62 + "_-", 56))],
    "sourcegraph": [("src access token", lambda m: "sgp_" + m.r(HEX, 16) + "_" + m.r(HEX, 40))],
    # AI
    "anthropic": [("anthropic api key", lambda m: f"sk-ant-api03-{m.r(B64URL, 93)}AA"),
                  ("anthropic admin key", lambda m: f"sk-ant-admin01-{m.r(B64URL, 93)}AA")],
    "openai": [("openai api key", lambda m: f"sk-proj-{m.r(B64URL, 74)}T3BlbkFJ{m.r(B64URL, 74)}"),
               ("openai key", lambda m: f"sk-{m.r(B62, 20)}T3BlbkFJ{m.r(B62, 20)}"),
               ("openai admin key", lambda m: f"sk-admin-{m.r(B64URL, 74)}T3BlbkFJ{m.r(B64URL, 74)}")],
    "groq": [("groq api key", lambda m: "gsk_" + m.r(B62, 52))],
    "perplexity": [("pplx api key", lambda m: "pplx-" + m.r(B62, 48))],
    "xai": [("xai api key", lambda m: "xai-" + m.r(B62, 80))],
    "replicate": [("replicate api token", lambda m: "r8_" + m.r(B62, 37))],
    "huggingface": [("hf token", lambda m: "hf_" + m.r(UPPER + LOWER, 34)),
                    ("hugging face org token", lambda m: "api_org_" + m.r(UPPER + LOWER, 34))],
    "cohere": [("cohere api key", lambda m: m.r(B62, 40))],
    "mistral": [("mistral api key", lambda m: m.r(B62, 32))],
    "openrouter": [("openrouter api key", lambda m: "sk-or-v1-" + m.r(HEX, 64))],
    "deepseek": [("deepseek api key", lambda m: "sk-" + m.r(HEX, 32))],
    "elevenlabs": [("elevenlabs api key", lambda m: "sk_" + m.r(HEX, 48))],
    "nvidia": [("nvidia api key", lambda m: "nvapi-" + m.r(B64URL, 64))],
    "wandb": [("wandb api key", lambda m: "wandb_v1_" + m.r(B62 + "_", 77))],
    "together": [("together api key", lambda m: "tgp_v1_" + m.r(B64URL, 43))],
    "jina": [("jina api key", lambda m: f"jina_{m.r(HEX, 32)}{m.r(B62, 28)}")],
    "langfuse": [("langfuse secret key", lambda m: "sk-lf-" + m.uuid())],
    "cerebras": [("cerebras api key", lambda m: "csk-" + m.r(LOWNUM, 48))],
    "langsmith": [("langsmith api key", lambda m: f"lsv2_pt_{m.r(HEX, 32)}_{m.r(HEX, 10)}")],
    "tavily": [("tavily api key", lambda m: "tvly-dev-" + m.r(B62, 32))],
    "pinecone": [("pinecone api key", lambda m: f"pcsk_{m.r(B62, 5)}_{m.r(B62, 63)}")],
    "firecrawl": [("firecrawl api key", lambda m: "fc-" + m.r(HEX, 32))],
    "assemblyai": [("assemblyai api key", lambda m: m.r(HEX, 32))],
    "deepgram": [("deepgram api key", lambda m: m.r(HEX, 40))],
    "cursor": [("cursor api key", lambda m: "crsr_" + m.r(HEX, 64)), ("cursor admin api key", lambda m: "key_" + m.r(HEX, 64))],
    # cloud and hosting
    "aws": [("aws access key id", lambda m: "AKIA" + m.r(UPPER + "234567", 16)),
            ("aws secret access key", lambda m: m.r(B64, 40)),
            ("aws session token", lambda m: "IQoJb3JpZ2luX2Vj" + m.r(B64, 300))],
    "gcp": [("google api key", lambda m: "AIza" + m.r(B62 + "_-", 35)),
            ("google client secret", lambda m: "GOCSPX-" + m.r(B64URL, 28)),
            ("google refresh token", lambda m: "1//0" + m.r(B64URL, 99)),
            ("gcp access token", lambda m: "ya29.a0" + m.r(B64URL, 150)),
            ("gemini api key", lambda m: "AQ.Ab8RN6" + m.r(B64URL, 44))],
    "azure": [("azure client secret", lambda m: m.r(B62, 3) + m.r(DIGITS, 1) + "Q~" + m.r(B62 + "_~.-", 34)),
              ("azure storage key", lambda m: m.r(B64, 86) + "=="),
              ("azure devops pat", lambda m: m.r("abcdefghijklmnopqrstuvwxyz234567", 52)),
              ("azure devops token", lambda m: m.r(B62, 76) + "AZDO" + m.r(B62, 4)),
              ("azure openai key", lambda m: m.r(HEX, 32))],
    "alibaba": [("alibaba access key secret", lambda m: m.r(B62, 30)), ("alicloud access key id", lambda m: "LTAI" + m.r(B62, 20))],
    "tencent": [("tencent secret id", lambda m: "AKID" + m.r(B62, 32))],
    "aws-bedrock": [("bedrock api key", lambda m: "ABSK" + m.b64(
        f"BedrockAPIKey-{m.r(LOWNUM, 4)}-at-{m.digits(12)}:{m.b64(m.rng.randbytes(40))}".encode()))],
    "ibm": [("ibmcloud api key", lambda m: m.r(B64URL, 44))],
    "yandex": [("yandex api key", lambda m: "AQVN" + m.r(B64URL, 35)), ("yandex oauth token", lambda m: "y0_AgAAAA" + m.r(B64URL, 49))],
    "cloudflare": [("cloudflare api token", lambda m: m.r(B64URL, 40)),
                   ("cloudflare origin ca key", lambda m: f"v1.0-{m.r(HEX, 24)}-{m.r(HEX, 146)}")],
    "digitalocean": [("digitalocean token", lambda m: "dop_v1_" + m.r(HEX, 64)), ("do oauth token", lambda m: "doo_v1_" + m.r(HEX, 64))],
    "linode": [("linode token", lambda m: m.r(HEX, 64))],
    "hetzner": [("hcloud token", lambda m: m.r(B62, 64))],
    "vultr": [("vultr api key", lambda m: m.r(UPPER + DIGITS, 36))],
    "scaleway": [("scw secret key", lambda m: m.uuid()), ("scw access key", lambda m: "SCW" + m.r(UPPER + DIGITS, 17))],
    "heroku": [("heroku api key", lambda m: "HRKU-AA" + m.r(B64URL, 58)), ("heroku token", lambda m: m.uuid())],
    "fly": [("fly api token", lambda m: "fo1_" + m.r(B64URL, 43)),
            ("fly access token", lambda m: "FlyV1 fm2_lJPECAAAAAAAA" + m.r(B64, 180) + "==")],
    "vercel": [("vercel token", lambda m: m.rng.choice(["vcp_", "vci_", "vca_", "vck_"]) + m.r(B62, 56)),
               ("vercel token", lambda m: m.r(B62, 24))],
    "netlify": [("netlify auth token", lambda m: "nfp_" + m.r(B62, 36))],
    "render": [("render api key", lambda m: "rnd_" + m.r(B62, 32))],
    "railway": [("railway token", lambda m: m.uuid())],
    "deno": [("deno deploy token", lambda m: "ddp_" + m.r(B62, 36)),
             ("deno org token", lambda m: "ddo_" + m.r(B62, 36))],
    "supabase": [("supabase access token", lambda m: "sbp_" + m.r(HEX, 40)),
                 ("supabase service role key", lambda m: m.jwt()),
                 ("supabase secret key", lambda m: f"sb_secret_{m.r(B64URL, 22)}_{m.r(B62, 8)}")],
    "planetscale": [("planetscale token", lambda m: "pscale_tkn_" + m.r(B64URL, 43)),
                    ("planetscale password", lambda m: "pscale_pw_" + m.r(B64URL, 43))],
    "mongodb-atlas": [("atlas client secret", lambda m: "mdb_sa_sk_" + m.r(B62 + "_", 40))],
    "cockroachdb": [("cockroach api key", lambda m: f"CCDB1_{m.r(B62, 22)}_{m.r(B62, 40)}")],
    "convex": [("convex deploy key", lambda m: f"prod:{m.rng.choice(['famous', 'happy', 'brave'])}-"
                                              f"{m.rng.choice(['cricket', 'otter', 'lynx'])}-{m.digits(3)}|"
                                              + m.b64(m.rng.randbytes(60)))],
    "neon": [("neon api key", lambda m: "napi_" + m.r(LOWNUM, 64))],
    "astra": [("astra db token", lambda m: f"AstraCS:{m.r(UPPER + LOWER, 24)}:{m.r(HEX, 64)}")],
    "databricks": [("databricks token", lambda m: "dapi" + m.r(HEX, 32))],
    "tailscale": [("tailscale auth key", lambda m: f"tskey-auth-{m.r(B62, 11)}CNTRL-{m.r(B62, 33)}"),
                  ("tailscale api key", lambda m: f"tskey-api-{m.r(B62, 11)}CNTRL-{m.r(B62, 33)}")],
    "ngrok": [("ngrok authtoken", lambda m: "2" + m.r(B62, 26) + "_" + m.r(B62, 21))],
    "openshift": [("openshift token", lambda m: "sha256~" + m.r(B64URL, 43))],
    "rancher": [("rancher token", lambda m: f"token-{m.r(LOWNUM, 5)}:{m.r(LOWNUM, 54)}")],
    "portainer": [("portainer api key", lambda m: "ptr_" + m.r(B64URL, 43))],
    "confluent": [("confluent api secret", lambda m: m.r(B62 + "+/", 64))],
    "backblaze": [("b2 application key", lambda m: "K005" + m.r(B62, 27))],
    # observability
    "sentry": [("sentry auth token", lambda m: "sntryu_" + m.r(HEX, 64))],
    "grafana": [("grafana service account token", lambda m: f"glsa_{m.r(B62, 32)}_{m.r(HEX, 8)}"),
                ("grafana cloud token", lambda m: "glc_eyJvIjoi" + m.r(B62, 100) + "=="),
                ("grafana api key", lambda m: m.b64(f'{{"k":"{m.r(B62, 32)}","n":"deploy","id":{m.digits(2)}}}'.encode()))],
    "newrelic": [("new relic api key", lambda m: "NRAK-" + m.r(UPPER + DIGITS, 27)),
                 ("new relic insert key", lambda m: "NRII-" + m.r(B64URL, 32)),
                 ("new relic license key", lambda m: m.r(HEX, 36) + "NRAL")],
    "datadog": [("dd api key", lambda m: m.r(HEX, 32)), ("datadog app key", lambda m: m.r(HEX, 40))],
    "dynatrace": [("dynatrace api token", lambda m: f"dt0c01.{m.r(UPPER + DIGITS, 24)}.{m.r(UPPER + DIGITS, 64)}")],
    "honeybadger": [("honeybadger api key", lambda m: "hbp_" + m.r(B62, 36))],
    "rollbar": [("rollbar access token", lambda m: m.r(HEX, 32))],
    "sumologic": [("sumo access key", lambda m: m.r(B62, 64))],
    "splunk": [("splunk hec token", lambda m: m.uuid())],
    "pagerduty": [("pagerduty api key", lambda m: "u+" + m.r(B64URL, 18))],
    "segment": [("segment api token", lambda m: "sgp_" + m.r(B62, 64)), ("segment write key", lambda m: m.r(B62, 32))],
    "mixpanel": [("mixpanel api secret", lambda m: m.r(HEX, 32))],
    "configcat": [("configcat sdk key", lambda m: f"configcat-sdk-1/{m.r(B64URL, 22)}/{m.r(B64URL, 22)}")],
    "samsara": [("samsara api token", lambda m: "samsara_api_" + m.r(B62, 30))],
    "honeycomb": [("honeycomb ingest key", lambda m: "hcaik_01" + m.r(LOWNUM, 56))],
    "axiom": [("axiom token", lambda m: "xaat-" + m.uuid())],
    "posthog": [("posthog personal api key", lambda m: "phx_" + m.r(B62, 43))],
    # collaboration and messaging
    "slack": [("slack bot token", lambda m: f"xoxb-{m.digits(12)}-{m.digits(13)}-{m.r(B62, 24)}"),
              ("slack user token", lambda m: f"xoxp-{m.digits(12)}-{m.digits(12)}-{m.digits(13)}-{m.r(HEX, 32)}"),
              ("slack app token", lambda m: f"xapp-1-A{m.r(UPPER + DIGITS, 10)}-{m.digits(13)}-{m.r(HEX, 64)}"),
              ("slack config token", lambda m: f"xoxe.xoxp-1-{m.r(B62, 140)}"),
              ("slack refresh token", lambda m: f"xoxe-1-{m.r(B62, 140)}"),
              ("slack session token", lambda m: f"xoxc-{m.digits(12)}-{m.digits(12)}-{m.digits(13)}-{m.r(HEX, 64)}"),
              ("slack webhook", lambda m: f"https://hooks.slack.com/services/T{m.r(UPPER + DIGITS, 8)}/B{m.r(UPPER + DIGITS, 10)}/{m.r(B62, 24)}")],
    "discord": [("discord webhook", lambda m: f"https://discord.com/api/webhooks/{m.digits(18)}/{m.r(B64URL, 68)}"),
                ("discord bot token", lambda m: f"{m.b64(m.digits(18).encode()).rstrip('=')}.{m.r(B64URL, 6)}.{m.r(B64URL, 38)}")],
    "telegram": [("telegram bot token", lambda m: f"{m.digits(10)}:AA{m.r(B64URL, 33)}")],
    "teams": [("teams webhook", lambda m: f"https://contoso.webhook.office.com/webhookb2/{m.uuid()}@{m.uuid()}/IncomingWebhook/{m.r(HEX, 32)}/{m.uuid()}")],
    "googlechat": [("chat webhook", lambda m: f"https://chat.googleapis.com/v1/spaces/AAAA{m.r(B62, 7)}/messages?key=AIza{m.r(B62, 35)}&token={m.r(B64URL, 43)}")],
    "mattermost": [("mattermost access token", lambda m: m.r(LOWNUM, 26))],
    "matrix": [("matrix access token", lambda m: f"syt_{m.b64('deploybot'.encode()).rstrip('=')}_{m.r(B62, 20)}_{m.r(B62, 6)}")],
    "linear": [("linear api key", lambda m: "lin_api_" + m.r(B62, 40)),
               ("linear oauth token", lambda m: "lin_oauth_" + m.r(HEX, 64))],
    "notion": [("notion token", lambda m: "ntn_" + m.r(B62, 46)), ("notion api key", lambda m: "secret_" + m.r(B62, 43))],
    "airtable": [("airtable pat", lambda m: f"pat{m.r(B62, 14)}.{m.r(HEX, 64)}")],
    "asana": [("asana pat", lambda m: f"2/{m.digits(16)}/{m.digits(16)}:{m.r(HEX, 32)}")],
    "clickup": [("clickup api token", lambda m: f"pk_{m.digits(8)}_{m.r(UPPER + DIGITS, 32)}")],
    "trello": [("trello token", lambda m: m.r(HEX, 64))],
    "figma": [("figma token", lambda m: "figd_" + m.r(B64URL, 40))],
    "contentful": [("contentful management token", lambda m: "CFPAT-" + m.r(B64URL, 43))],
    "typeform": [("typeform token", lambda m: f"tfp_{m.r(B62, 44)}_{m.r(B62, 14)}")],
    "hubspot": [("hubspot access token", lambda m: f"pat-na1-{m.uuid()}")],
    "intercom": [("intercom access token", lambda m: "dG9rOj" + m.r(B62, 54) + "=")],
    "zendesk": [("zendesk api token", lambda m: m.r(B62, 40))],
    "zoho": [("zoho refresh token", lambda m: f"1000.{m.r(HEX, 32)}.{m.r(HEX, 32)}")],
    "frameio": [("frameio token", lambda m: "fio-u-" + m.r(B64URL, 64))],
    "adobe": [("adobe client secret", lambda m: "p8e-" + m.r(B62, 32))],
    "twitter": [("twitter bearer token", lambda m: "AAAAAAAAAAAAAAAAAAAAA" + m.r(B62, 30) + "%3D" + m.r(B62, 50))],
    "facebook": [("facebook access token", lambda m: f"{m.digits(15)}|{m.r(HEX, 32)}"),
                 ("fb user token", lambda m: "EAAC" + m.r(B62, 160))],
    "pinterest": [("pinterest access token", lambda m: "pina_" + m.r(B64URL, 150))],
    "apify": [("apify token", lambda m: "apify_api_" + m.r(B62, 36))],
    "twitch": [("twitch oauth token", lambda m: m.r(LOWNUM, 30))],
    "dropbox": [("dropbox access token", lambda m: "sl." + m.r(B64URL, 138)),
                ("dropbox long lived token", lambda m: f"{m.r(LOWNUM, 11)}AAAAAAAAAA{m.r(B64URL, 43)}")],
    "okta": [("okta api token", lambda m: "00" + m.r(B64URL, 40))],
    "auth0": [("auth0 client secret", lambda m: m.r(B64URL, 64))],
    "1password": [("op service account token", lambda m: "ops_eyJzaWduSW5BZGRyZXNzIjoi" + m.r(B62, 300)),
                  ("1password secret key", lambda m: "A3-" + "-".join(m.r(UPPER.replace("O", "").replace("I", "") + DIGITS, n) for n in (6, 6, 5, 5, 5, 5)))],
    "bitwarden": [("bws access token", lambda m: f"0.{m.uuid()}.{m.r(B62, 30)}:{m.r(B62, 22)}==")],
    "age": [("age secret key", lambda m: "AGE-SECRET-KEY-1" + m.r(BECH32.upper(), 58))],
    "nostr": [("nostr private key", lambda m: "nsec1" + m.r(BECH32, 58))],
    "statsig": [("statsig server secret", lambda m: "secret-" + m.r(B62, 43))],
    "onesignal": [("onesignal rest api key", lambda m: "os_v2_app_" + m.r("abcdefghijklmnopqrstuvwxyz234567", 113))],
    # payments and commerce
    "polar": [("polar access token", lambda m: m.rng.choice(["polar_oat_", "polar_pat_"]) + m.r(B62, 43))],
    "stripe": [("stripe secret key", lambda m: "sk_live_" + m.r(B62, 99)), ("stripe restricted key", lambda m: "rk_live_" + m.r(B62, 24)),
               ("stripe webhook secret", lambda m: "whsec_" + m.r(B62, 32))],
    "square": [("square access token", lambda m: "EAAA" + m.r(B64URL, 60)), ("square secret", lambda m: "sq0csp-" + m.r(B64URL, 43))],
    "braintree": [("braintree access token", lambda m: f"access_token$production${m.r(LOWNUM, 16)}${m.r(HEX, 32)}")],
    "paypal": [("paypal client secret", lambda m: "E" + m.r(B64URL, 79))],
    "flutterwave": [("flutterwave secret key", lambda m: f"FLWSECK-{m.r(HEX, 32)}-X"),
                    ("flutterwave encryption key", lambda m: "FLWSECK_TEST" + m.r("abcdefgh0123456789", 12))],
    "paystack": [("paystack secret key", lambda m: "sk_live_" + m.r(HEX, 40))],
    "duffel": [("duffel token", lambda m: "duffel_live_" + m.r(B64URL, 43))],
    "easypost": [("easypost api key", lambda m: "EZAK" + m.r(B62, 54))],
    "shippo": [("shippo api token", lambda m: "shippo_live_" + m.r(HEX, 40))],
    "gocardless": [("gocardless access token", lambda m: "live_" + m.r(B64URL, 40))],
    "asaas": [("asaas api key", lambda m: "$aact_prod_" + m.r(B62, 12) + m.b64(m.r(B62, 60).encode()))],
    "paddle": [("paddle api key", lambda m: f"pdl_live_apikey_01{m.r(LOWNUM, 24)}_{m.r(B62, 22)}_{m.r(B62, 3)}")],
    "razorpay": [("razorpay key secret", lambda m: m.r(B62, 24))],
    "plaid": [("plaid secret", lambda m: m.r(HEX, 30)), ("plaid access token", lambda m: f"access-production-{m.uuid()}")],
    "adafruit": [("adafruit io key", lambda m: "aio_" + m.r(B62, 28))],
    "authress": [("authress access key",
                  lambda m: f"sc_{m.r(LOWNUM, 12)}.{m.r(LOWNUM, 5)}.acc_{m.r(LOWNUM, 20)}.{m.r(B62 + '+/', 60)}")],
    "intra42": [("intra client secret", lambda m: "s-s4t2ud-" + m.r(HEX, 64))],
    "settlemint": [("settlemint token", lambda m: "sm_pat_" + m.r(B62, 16))],
    "maxmind": [("maxmind license key", lambda m: f"{m.r(B62, 6)}_{m.r(B62, 29)}_mmk")],
    "midtrans": [("midtrans server key", lambda m: m.rng.choice(["Mid-server-", "SB-Mid-server-"]) + m.r(B64URL, 24))],
    "mercury": [("mercury api token",
                 lambda m: f"secret-token:mercury_production_{m.r(LOWER, 3)}_{m.r(B62, 45)}_yrucrem")],
    "ramp": [("ramp client secret", lambda m: "ramp_sec_" + m.r(B62, 48))],
    "coinbase": [("coinbase api secret", lambda m: m.r(B62, 32))],
    "binance": [("binance secret key", lambda m: m.r(B62, 64))],
    "shopify": [("shopify access token", lambda m: "shpat_" + m.r(HEX, 32)), ("shopify shared secret", lambda m: "shpss_" + m.r(HEX, 32))],
    "woocommerce": [("woocommerce consumer secret", lambda m: "cs_" + m.r(HEX, 40))],
    "klaviyo": [("klaviyo private api key", lambda m: "pk_" + m.r(HEX, 34))],
    "salesforce": [("salesforce access token", lambda m: f"00D{m.r(B62, 12)}!{m.r(B62 + '._', 96)}")],
    "amazon": [("lwa client secret", lambda m: "amzn1.oa2-cs.v1." + m.r(HEX, 64))],
    # email and SMS
    "sendgrid": [("sendgrid api key", lambda m: f"SG.{m.r(B64URL, 22)}.{m.r(B64URL, 43)}")],
    "mailgun": [("mailgun api key", lambda m: "key-" + m.r(HEX, 32)), ("mailgun key", lambda m: f"{m.r(HEX, 32)}-{m.r(HEX, 8)}-{m.r(HEX, 8)}")],
    "mailchimp": [("mailchimp api key", lambda m: f"{m.r(HEX, 32)}-us{m.rng.randint(1, 21)}")],
    "brevo": [("brevo api key", lambda m: f"xkeysib-{m.r(HEX, 64)}-{m.r(B62, 16)}")],
    "postmark": [("postmark server token", lambda m: m.uuid())],
    "resend": [("resend api key", lambda m: f"re_{m.r(B62, 8)}_{m.r(B62, 24)}")],
    "mailersend": [("mailersend api token", lambda m: "mlsn." + m.r(HEX, 64))],
    "mailjet": [("mailjet secret key", lambda m: m.r(HEX, 32))],
    "twilio": [("twilio api key", lambda m: "SK" + m.r(HEX, 32)), ("twilio auth token", lambda m: m.r(HEX, 32))],
    "telnyx": [("telnyx api key", lambda m: f"KEY{m.r(HEX.upper(), 32)}_{m.r(B62, 22)}")],
    "vonage": [("vonage api secret", lambda m: m.r(B62, 16))],
    "messagebird": [("messagebird access key", lambda m: m.r(B62, 25))],
    "gcnotify": [("notify api key", lambda m: f"gcntfy-deploy_key-{m.uuid()}-{m.uuid()}")],
    "pusher": [("pusher app secret", lambda m: m.r(HEX, 20))],
    "pubnub": [("pubnub secret key", lambda m: "sec-c-" + m.r(B62, 48))],
    # data, search, maps, misc APIs
    "mongodb": [("mongodb uri", lambda m: f"mongodb+srv://app:{m.password()}@cluster0.{m.r(LOWNUM, 5)}.mongodb.net/prod")],
    "postgres": [("database url", lambda m: f"postgres://app:{m.password()}@db.internal:5432/app")],
    "mysql": [("mysql password", lambda m: m.password())],
    "redis": [("redis url", lambda m: f"redis://default:{m.r(B62, 32)}@cache.internal:6379/0")],
    "rabbitmq": [("amqp url", lambda m: f"amqps://worker:{m.password()}@mq.internal:5671/vhost")],
    "algolia": [("algolia admin api key", lambda m: m.r(HEX, 32))],
    "mapbox": [("mapbox access token", lambda m: f"sk.eyJ1Ijoi{m.r(B62, 20)}IiwiYSI6I{m.r(B62, 25)}.{m.r(B64URL, 22)}")],
    "firebase": [("fcm server key", lambda m: f"AAAA{m.r(B64URL, 7)}:APA91b{m.r(B64URL, 134)}")],
    "cloudinary": [("cloudinary url", lambda m: f"cloudinary://{m.digits(15)}:{m.r(B64URL, 27)}@acme-media")],
    "imagekit": [("imagekit private key", lambda m: "private_" + m.r(B62 + "+/", 27) + "=")],
    "unkey": [("unkey root key", lambda m: "unkey_" + m.r(B62, 28))],
    "valtown": [("val town token", lambda m: "vtwn_" + m.r(B62, 32))],
    "lichess": [("lichess token", lambda m: "lip_" + m.r(B62, 20))],
    "wakatime": [("wakatime api key", lambda m: "waka_" + m.uuid())],
    "aikido": [("aikido api key", lambda m: "AIK_CI_" + m.r(B62, 64))],
    "inngest": [("inngest signing key", lambda m: "signkey-prod-" + m.r(HEX, 64))],
    "xata": [("xata api key", lambda m: "xau_" + m.r(B62, 33))],
    "zuplo": [("zuplo api key", lambda m: f"zpka_{m.r(HEX, 32)}_{m.r(HEX, 8)}")],
    "openweather": [("openweather api key", lambda m: m.r(HEX, 32))],
    "shodan": [("shodan api key", lambda m: m.r(B62, 32))],
    "virustotal": [("vt api key", lambda m: m.r(HEX, 64))],
    "etherscan": [("etherscan api key", lambda m: m.r(UPPER + DIGITS, 34))],
    "infura": [("infura api key", lambda m: m.r(HEX, 32))],
    "ethereum": [("wallet private key", lambda m: "0x" + m.r(HEX, 64))],
    "scalingo": [("scalingo api token", lambda m: "tk-us-" + m.r(B64URL, 48))],
    "defined": [("dnkey", lambda m: f"dnkey-{m.r(UPPER + DIGITS, 26)}-{m.r(UPPER + DIGITS, 52)}")],
    "ionic": [("ionic token", lambda m: "ion_" + m.r(B62, 42))],
    "porkbun": [("porkbun secret api key", lambda m: "sk1_" + m.r(HEX, 64))],
    "dnsimple": [("dnsimple token", lambda m: "dnsimple_u_" + m.r(B62, 32))],
    "godaddy": [("godaddy api secret", lambda m: m.r(B62, 22))],
    "wireguard": [("wireguard private key", lambda m: m.b64(m.rng.randbytes(32)))],
    "docker-registry": [("docker auth", lambda m: m.b64(f"deploy:{m.password()}".encode()))],
    "django": [("django secret key", lambda m: m.r(LOWNUM + "!@#%^&*(-_=+)", 50))],
    "rails": [("secret key base", lambda m: m.r(HEX, 128))],
    "password": [("db password", lambda m: m.password()), ("admin password", lambda m: m.password()),
                 ("smtp password", lambda m: m.r(LOWNUM, 32))],
    "jwt": [("session token", lambda m: m.jwt("HS256")), ("id token", lambda m: m.jwt("RS256")),
            ("unsigned jwt", lambda m: m.jwt("none")), ("jwt base64", lambda m: m.b64(m.jwt().encode()))],
    "private-key": [("ssh private key", lambda m: m.pem("OPENSSH PRIVATE KEY", 400)),
                    ("rsa private key", lambda m: m.pem("RSA PRIVATE KEY", 900)),
                    ("ec private key", lambda m: m.pem("EC PRIVATE KEY", 121)),
                    ("tls private key", lambda m: m.pem("PRIVATE KEY", 300)),
                    ("ssh key base64", lambda m: m.b64(m.pem("OPENSSH PRIVATE KEY", 300).encode() + b"\n")),
                    ("tls key base64", lambda m: _wrapped(m.b64(m.pem("PRIVATE KEY", 300).encode() + b"\n"), 76))],
    "pgp": [("gpg private key", lambda m: m.pem("PGP PRIVATE KEY BLOCK", 500).replace("-----\n", "-----\n\n", 1))],
    "onfido": [("onfido api token", lambda m: m.rng.choice(["api_live.", "api_live_us.", "api_live_ca."]) + m.r(B64URL, 43))],
    "devin": [("devin api key", lambda m: "apk_user_" + m.b64(m.r(B62, 48).encode())),
              ("devin service user token", lambda m: "cog_" + m.r(LOWER + "234567", 52))],
    "highnote": [("highnote secret key", lambda m: "sk_live_" + m.b64(f"key_{m.digits(2)}{m.r(B62, 40)}".encode()))],
    "fullstory": [("fullstory api key", lambda m: m.rng.choice(["na1.", "eu1."]) + m.r(B62, 40))],
}
SECRETS_PER_PROVIDER = 3


def _wrapped(text: str, width: int) -> str:
    return "\n".join(text[i:i + width] for i in range(0, len(text), width))


# ---------------------------------------------------------------------------- names

def snake(words: str) -> str:
    return words.replace(" ", "_")


def upper(words: str) -> str:
    return snake(words).upper()


def camel(words: str) -> str:
    first, *rest = words.split()
    return first + "".join(w.capitalize() for w in rest)


def pascal(words: str) -> str:
    return "".join(w.capitalize() for w in words.split())


def kebab(words: str) -> str:
    return words.replace(" ", "-")


def title(words: str) -> str:
    return " ".join(w if w.isupper() else w.capitalize() for w in words.split())


# ---------------------------------------------------------------------------- syntaxes
# Each takes (name words, value, maker) and returns (text, value as written in the text).

Syntax = Callable[[str, str, Maker], "tuple[str, str]"]


def _esc(value: str) -> str:
    return value.replace("\n", "\\n")


def _indent(value: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in value.split("\n"))


def _first(value: str) -> str:
    """Where an indented multi-line value is, its first line says."""
    return value.split("\n", 1)[0]


def _pick(m: Maker, *forms: str) -> str:
    return m.rng.choice(forms)


def s_env(n: str, v: str, m: Maker) -> tuple[str, str]:
    if "\n" in v:
        return f'{upper(n)}="{v}"', v
    return _pick(m, f"{upper(n)}={v}", f'{upper(n)}="{v}"', f"{upper(n)}='{v}'", f"# staging\n{upper(n)}={v}\nDEBUG=false"), v


def s_export(n: str, v: str, m: Maker) -> tuple[str, str]:
    return _pick(m, f'export {upper(n)}="{_esc(v)}"', f"export {upper(n)}='{_esc(v)}'", f"export {upper(n)}={_esc(v)}"), _esc(v)


def s_yaml(n: str, v: str, m: Maker) -> tuple[str, str]:
    if "\n" in v:
        return f"app:\n  {snake(n)}: |\n{_indent(v, '    ')}\n  region: eu-west-1", _first(v)
    return _pick(m, f"{snake(n)}: {v}", f'service:\n  {snake(n)}: "{v}"\n  timeout: 30',
                 f"credentials:\n  - name: prod\n    {camel(n)}: '{v}'"), v


def s_json(n: str, v: str, m: Maker) -> tuple[str, str]:
    e = _esc(v)
    return _pick(m, f'{{"{camel(n)}": "{e}", "region": "eu-west-1"}}',
                 f'{{\n  "settings": {{\n    "{snake(n)}": "{e}",\n    "retries": 3\n  }}\n}}'), e


def s_json_escaped(n: str, v: str, m: Maker) -> tuple[str, str]:
    e = _esc(v)
    return _pick(m, f'{{"env": "{upper(n)}={e}\\nNEXT_PUBLIC_FLAG=true"}}',
                 f'{{"script": "export {upper(n)}={e}\\nnpm run deploy"}}'), e


def s_toml(n: str, v: str, m: Maker) -> tuple[str, str]:
    if "\n" in v:
        return f'[service]\n{snake(n)} = """\n{v}\n"""', v
    return _pick(m, f'[service]\n{snake(n)} = "{v}"', f"[default]\n{snake(n)} = '{v}'\nregion = 'eu'"), v


def s_ini(n: str, v: str, m: Maker) -> tuple[str, str]:
    return _pick(m, f"[default]\n{snake(n)} = {_esc(v)}", f"[credentials]\n{snake(n)}={_esc(v)}\nuser = deploy"), _esc(v)


def s_python(n: str, v: str, m: Maker) -> tuple[str, str]:
    if "\n" in v:
        return f'{upper(n)} = """{v}\n"""', v
    return _pick(m, f'{upper(n)} = "{v}"', f"settings = {{'{snake(n)}': '{v}'}}", f'os.environ["{upper(n)}"] = "{v}"',
                 f'client = Client({snake(n)}="{v}")'), v


def s_js(n: str, v: str, m: Maker) -> tuple[str, str]:
    if "\n" in v:
        return f"const {camel(n)} = `{v}`;", v
    return _pick(m, f'const {camel(n)} = "{v}";', f"module.exports = {{ {camel(n)}: '{v}' }};",
                 f'process.env.{upper(n)} = "{v}";', f"let {camel(n)} = `{v}`;"), v


def s_ts(n: str, v: str, m: Maker) -> tuple[str, str]:
    return _pick(m, f'const {camel(n)}: string = "{_esc(v)}";', f"export const {upper(n)} = '{_esc(v)}' as const;",
                 f'private readonly {camel(n)} = "{_esc(v)}";'), _esc(v)


def s_go(n: str, v: str, m: Maker) -> tuple[str, str]:
    if "\n" in v:
        return f"const {camel(n)} = `{v}`", v
    return _pick(m, f'{camel(n)} := "{v}"', f'const {pascal(n)} = "{v}"', f'var {camel(n)} string = "{v}"',
                 f'os.Setenv("{upper(n)}", "{v}")'), v


def s_java(n: str, v: str, m: Maker) -> tuple[str, str]:
    e = _esc(v)
    return _pick(m, f'private static final String {upper(n)} = "{e}";', f'String {camel(n)} = "{e}";',
                 f'System.setProperty("{upper(n)}", "{e}");', f'props.put("{n.replace(" ", ".")}", "{e}");'), e


def s_php(n: str, v: str, m: Maker) -> tuple[str, str]:
    e = _esc(v)
    q = "'" if "$" in v else '"'  # a $ in a double-quoted PHP string would interpolate
    return _pick(m, f"${camel(n)} = {q}{e}{q};", f"define('{upper(n)}', '{e}');", f"${camel(n)} .= {q}{e}{q};",
                 f"'{snake(n)}' => '{e}',"), e


def s_ruby(n: str, v: str, m: Maker) -> tuple[str, str]:
    e = _esc(v)
    return _pick(m, f'{snake(n)} = "{e}"', f'ENV["{upper(n)}"] = "{e}"', f"config.{snake(n)} = '{e}'",
                 f'{{ {snake(n)}: "{e}" }}', f':{snake(n)} => "{e}"'), e


def _make(op: str) -> Syntax:
    return lambda n, v, m: (f"{upper(n)} {op} {_esc(v)}\n\ndeploy:\n\t./deploy.sh", _esc(v))


def s_xml(n: str, v: str, m: Maker) -> tuple[str, str]:
    e = _esc(v)
    return _pick(m, f"<config>\n  <{camel(n)}>{e}</{camel(n)}>\n</config>", f'<add key="{pascal(n)}" value="{e}" />',
                 f'<property name="{n.replace(" ", ".")}" value="{e}"/>'), e


def s_xml_own_line(n: str, v: str, m: Maker) -> tuple[str, str]:
    return f"<settings>\n  <{camel(n)}>\n    {_indent(v, '    ').lstrip()}\n  </{camel(n)}>\n</settings>", _first(v)


def s_dockerfile(n: str, v: str, m: Maker) -> tuple[str, str]:
    e = _esc(v)
    return _pick(m, f"FROM python:3.12-slim\nENV {upper(n)}={e}", f"FROM node:20\nENV {upper(n)} {e}",
                 f"ARG {upper(n)}={e}\nRUN ./build.sh"), e


def s_compose(n: str, v: str, m: Maker) -> tuple[str, str]:
    e = _esc(v)
    return _pick(m, f"services:\n  app:\n    image: acme/app:1.4\n    environment:\n      - {upper(n)}={e}",
                 f"services:\n  app:\n    environment:\n      {upper(n)}: \"{e}\""), e


def s_k8s_env(n: str, v: str, m: Maker) -> tuple[str, str]:
    return (f"containers:\n  - name: app\n    env:\n      - name: {upper(n)}\n        value: \"{_esc(v)}\"", _esc(v))


def s_k8s_secret(n: str, v: str, m: Maker) -> tuple[str, str]:
    encoded = m.b64(v.encode())
    return (f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-secrets\ntype: Opaque\ndata:\n"
            f"  {kebab(n)}: {encoded}"), encoded


def s_k8s_string_data(n: str, v: str, m: Maker) -> tuple[str, str]:
    if "\n" in v:
        return f"kind: Secret\nstringData:\n  {kebab(n)}: |\n{_indent(v, '    ')}", _first(v)
    return f"apiVersion: v1\nkind: Secret\nstringData:\n  {snake(n)}: {v}", v


def s_curl_bearer(n: str, v: str, m: Maker) -> tuple[str, str]:
    e = _esc(v)
    return _pick(m, f"curl -H 'Authorization: Bearer {e}' https://api.acme.dev/v1/me",
                 f'curl -sS --header "Authorization: Bearer {e}" -X POST https://api.acme.dev/v2/jobs'), e


def s_curl_header(n: str, v: str, m: Maker) -> tuple[str, str]:
    header = "X-" + "-".join(w.capitalize() for w in n.split())
    return _pick(m, f'curl -H "{header}: {_esc(v)}" https://api.acme.dev/v1/items',
                 f"curl -s https://api.acme.dev/v1/items -H '{header.lower()}: {_esc(v)}'"), _esc(v)


def s_curl_user(n: str, v: str, m: Maker) -> tuple[str, str]:
    return _pick(m, f"curl --user deploy:{_esc(v)} https://ci.acme.dev/api/json",
                 f'curl -u "{_esc(v)}:" https://api.acme.dev/v1/charges'), _esc(v)


def s_http(n: str, v: str, m: Maker) -> tuple[str, str]:
    header = "-".join(w.capitalize() for w in n.split())
    return _pick(m, f"GET /v1/me HTTP/1.1\nHost: api.acme.dev\nAuthorization: Bearer {_esc(v)}\nAccept: */*",
                 f"POST /v1/events HTTP/1.1\nHost: api.acme.dev\n{header}: {_esc(v)}\nContent-Type: application/json"), _esc(v)


def s_md_prose(n: str, v: str, m: Maker) -> tuple[str, str]:
    if "\n" in v:
        return f"The {title(n)} for the build box:\n\n{v}\n\nRotate it after the demo.", v
    return _pick(m, f"The {title(n)} is `{v}` (rotate after the demo).",
                 f"- {title(n)}: {v}", f"Use {title(n)} `{v}` for the staging deploy.",
                 f"Remember: our {title(n)} = {v}, do not share it."), v


def s_md_table(n: str, v: str, m: Maker) -> tuple[str, str]:
    return f"| name | value |\n|------|-------|\n| {upper(n)} | `{_esc(v)}` |", _esc(v)


def s_md_code(n: str, v: str, m: Maker) -> tuple[str, str]:
    if "\n" in v:
        return f"Key file:\n\n```\n{v}\n```", v
    return _pick(m, f"Set it up:\n\n```bash\nexport {upper(n)}={v}\n./run.sh\n```",
                 f"```yaml\n{snake(n)}: {v}\n```"), v


SYNTAXES: dict[str, Syntax] = {
    "env": s_env, "shell-export": s_export, "yaml": s_yaml, "json": s_json, "json-escaped-newline": s_json_escaped,
    "toml": s_toml, "ini": s_ini, "python": s_python, "javascript": s_js, "typescript": s_ts, "go": s_go,
    "java": s_java, "php": s_php, "ruby": s_ruby,
    **{f"makefile {op}": _make(op) for op in ("=", ":=", "::=", ":::=", "?=", "+=")},
    "xml": s_xml, "xml-own-line": s_xml_own_line, "dockerfile": s_dockerfile, "compose": s_compose,
    "k8s-env": s_k8s_env, "k8s-secret-data": s_k8s_secret, "k8s-string-data": s_k8s_string_data,
    "curl-bearer": s_curl_bearer, "curl-header": s_curl_header, "curl-user": s_curl_user, "http-header": s_http,
    "markdown-prose": s_md_prose, "markdown-table": s_md_table, "markdown-code": s_md_code,
}


def _case(group: str, syntax: str, text: str, written: str) -> Case:
    start = text.index(written)
    return Case(group, syntax, text, start, start + len(written))


def positives(seed: int = SEED) -> list[Case]:
    """Each provider's secrets (SECRETS_PER_PROVIDER, over its formats) in every syntax."""
    m, cases = Maker(seed), []
    for provider, formats in PROVIDERS.items():
        for i in range(max(SECRETS_PER_PROVIDER, len(formats))):
            words, make = formats[i % len(formats)]
            value = make(m)
            for syntax, wrap in SYNTAXES.items():
                text, written = wrap(words, value, m)
                cases.append(_case(provider, syntax, text, written))
    return cases


# ---------------------------------------------------------------------------- look-alikes

LOOKALIKE_SYNTAXES = ("env", "shell-export", "yaml", "json", "toml", "python", "javascript", "go", "java", "php",
                      "ruby", "makefile :=", "xml", "dockerfile", "k8s-env", "markdown-prose", "markdown-table")
SECRET_NAMES = ("api key", "api token", "secret key", "auth token", "access token", "client secret", "db password",
                "github token", "slack token", "stripe secret key", "jwt secret", "encryption key", "private key",
                "session secret", "app password", "service token")
WORDS = ("user session cache build deploy release config default primary backup staging account profile "
         "refresh handler provider manager request response value field record index version module service "
         "client server token secret key auth access api").split()


def _identifier(m: Maker) -> str:
    words = m.rng.sample(WORDS, m.rng.randint(3, 5))
    style = m.rng.randrange(4)
    if style == 0:
        value = "_".join(words) + "_" + m.digits(m.rng.randint(1, 4))
    elif style == 1:
        value = "_".join(words).upper() + "_V" + m.digits(1)
    elif style == 2:
        value = words[0] + "".join(w.capitalize() for w in words[1:]) + m.digits(m.rng.randint(1, 3))
    else:
        value = "-".join(words) + "-" + m.digits(4)
    return value


GROUPS = ("com.auth0", "io.jsonwebtoken", "org.springframework.security", "software.amazon.awssdk", "com.nimbusds",
          "org.bouncycastle", "com.google.crypto.tink", "io.github.secretmanager")
ARTIFACTS = ("java-jwt", "jjwt-api", "spring-security-oauth2", "secretsmanager", "oauth2-oidc-sdk", "bcprov-jdk18on",
             "tink", "keyvault-secrets", "token-client", "auth-core")


def _coordinates(m: Maker) -> str:
    version = f"{m.rng.randint(0, 12)}.{m.rng.randint(0, 40)}.{m.rng.randint(0, 99)}"
    group, artifact = m.rng.choice(GROUPS), m.rng.choice(ARTIFACTS)
    return m.rng.choice([f"{group}:{artifact}:{version}", f"{group}:{artifact}-{version}",
                         f"{artifact}@{version}", f"{group}:{artifact}:{version}-jre"])


def _file_with_hash(m: Maker) -> str:
    return m.rng.choice([
        f"static/js/main.{m.r(HEX, 20)}.chunk.js", f"assets/app-{m.r(B62 + '_-', 8)}.{m.r(HEX, 32)}.css",
        f"/var/lib/tokens/{m.r(HEX, 64)}.json", f"backup-{m.r(HEX, 40)}.tar.gz", f"photo_{m.r(HEX, 32)}.png",
        f"dist/vendor.{m.r(HEX, 16)}{m.r(HEX, 16)}.min.js", f"keys/{m.r(HEX, 40)}.pub",
        f"build/{m.r(B62, 32)}.wasm"])


def _sops(m: Maker) -> str:
    data = m.b64(m.rng.randbytes(m.rng.randint(16, 60)))
    return (f"ENC[AES256_GCM,data:{data},iv:{m.b64(m.rng.randbytes(32))},tag:{m.b64(m.rng.randbytes(16))},"
            f"type:str]")


def _csrf_html(m: Maker) -> str:
    token = m.rng.choice([m.b64(m.rng.randbytes(64)), m.r(B62, 64), m.r(B64URL, 43),
                          "CfDJ8" + m.r(B64URL, 150)])
    return m.rng.choice([
        f'<meta name="csrf-token" content="{token}">',
        f'<input type="hidden" name="authenticity_token" value="{token}" autocomplete="off" />',
        f'<input name="__RequestVerificationToken" type="hidden" value="{token}" />',
        f"<input type='hidden' name='csrfmiddlewaretoken' value='{token}'>",
        f'<form method="post">\n  <input type="hidden" name="_csrf" value="{token}"/>\n</form>',
        f'<meta name="csrf-param" content="authenticity_token" />\n<meta name="csrf-token" content="{token}" />'])


def _base64_slice(m: Maker) -> str:
    """Part of a base64 blob (an image, a certificate, a bundle), under no secret-sounding name."""
    blob = m.b64(m.rng.randbytes(3000))
    at = m.rng.randrange(0, 2000)
    piece = blob[at:at + m.rng.randint(40, 120)]
    row = at - at % 76
    lines = [blob[i:i + 76] for i in range(row, row + 76 * 6, 76)]
    return m.rng.choice([
        f'{{"thumbnail": "{piece}", "width": 64}}',
        "    " + "\n    ".join(lines),
        f"icon = (\n    '{lines[0]}'\n    '{lines[1]}'\n)",
        f"The blob continues with {piece} and so on.",
        f"<binary>\n{chr(10).join(lines)}\n</binary>",
        f"certificate: {lines[0]}\n  {lines[1]}"])


def _dummy(m: Maker) -> str:
    kind = m.rng.randrange(6)
    if kind == 0:
        return m.rng.choice(["ghp_", "sk-", "xoxb-", "sk_live_", "glpat-", "AKIA", ""]) + m.r(B62, 6) + m.rng.choice(
            ["_short", "_too_short", "-short"])
    if kind == 1:
        letters, digits = m.rng.choice([LOWER, UPPER]), "1234567890"
        start, n, step = m.rng.randrange(0, 10), m.rng.randint(5, 12), m.rng.choice([1, 2])
        chars = [c for i in range(n) for c in (letters[(start + step * i) % 26], digits[(start + step * i) % 10])]
        value = "".join(c.upper() if i % 4 == 2 else c for i, c in enumerate(chars))
        return m.rng.choice(["", "sk_live_", "ghp_", "xoxb-"]) + value
    if kind == 2:
        return m.rng.choice(["sk_live_", "ghp_", "", "xoxb-"]) + m.rng.choice(["EXAMPLE", "example", "Example"]) + m.r(B62, 20)
    if kind == 3:
        return m.r(B62, 8) + m.rng.choice(["test", "TEST", "Test"]) + m.r(B62, 16)
    if kind == 4:
        return m.rng.choice(["sandbox_", "sandbox-", "SANDBOX"]) + m.r(B62, 24)
    return m.rng.choice(["abcdefghijklmnopqrstuvwx", "ABCDEF0123456789abcdef", "0123456789abcdefABCDEF0123",
                         "qwertyuiopasdfghjkl"]) + m.r(DIGITS, 2)


def _placeholder(m: Maker) -> str:
    return m.rng.choice([
        "<your-token>", "<YOUR_API_KEY>", "your_api_key_here", "xxxxxxxxxxxxxxxxxxxxxxxx", "XXXX-XXXX-XXXX-XXXX",
        "${API_TOKEN}", "$API_TOKEN", "{{ api_token }}", "{{ .Values.apiToken }}", "changeme", "CHANGE_ME",
        "REPLACE_ME", "<redacted>", "********", "%API_TOKEN%", "${{ secrets.API_TOKEN }}", "TODO", "null", "''",
        "sk-...", "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "insert-your-key", "<token>", "{api_key}",
        "os.environ['API_TOKEN']", "process.env.API_TOKEN", "ENV['API_TOKEN']", "op://vault/item/password",
        "vault:secret/data/app#token", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/app"])


TOKEN_PREFIXES = ("pina_", "pinr_", "lip_", "rnd_", "apify_api_", "samsara_api_", "unkey_", "vtwn_", "ddp_", "nfp_",
                  "tskey-auth-", "polar_pat_", "wandb_v1_", "jina_", "mdb_sa_sk_", "sb_secret_", "AIK_CI_")


def _prefix_words(m: Maker) -> str:
    """A name that starts like a token and goes on in words (pina_colada_recipe, samsara_api_rate_limit)."""
    words = m.rng.sample(WORDS, m.rng.randint(3, 5))
    style = m.rng.randrange(3)
    body = ("_".join(words) if style == 0 else words[0] + "".join(w.capitalize() for w in words[1:]) if style == 1
            else "-".join(words) + "-" + m.digits(2))
    return m.rng.choice(TOKEN_PREFIXES) + body


# kind -> a value that is no credential, written after a secret-sounding name in one of the syntaxes
LOOKALIKES: dict[str, Callable[[Maker], str]] = {
    "identifier": _identifier, "build-coordinates": _coordinates, "file-with-hash": _file_with_hash,
    "sops-ciphertext": _sops, "dummy": _dummy, "placeholder": _placeholder, "prefix-words": _prefix_words,
}
# kind -> a whole snippet that holds no credential
SNIPPETS: dict[str, Callable[[Maker], str]] = {"html-csrf": _csrf_html, "base64-slice": _base64_slice}
LOOKALIKES_PER_KIND = 200


def lookalikes(seed: int = SEED + 1) -> list[Case]:
    """LOOKALIKES_PER_KIND samples of each kind."""
    m, cases = Maker(seed), []
    for kind, make in LOOKALIKES.items():
        for _ in range(LOOKALIKES_PER_KIND):
            syntax = m.rng.choice(LOOKALIKE_SYNTAXES)
            text, _ = SYNTAXES[syntax](m.rng.choice(SECRET_NAMES), make(m), m)
            cases.append(Case(kind, syntax, text, -1, -1))
    for kind, make in SNIPPETS.items():
        cases += [Case(kind, "snippet", make(m), -1, -1) for _ in range(LOOKALIKES_PER_KIND)]
    return cases


def main() -> None:
    found = positives()
    secrets = len(found) // len(SYNTAXES)
    alikes = lookalikes()
    print(f"{len(found)} positive samples: {secrets} secrets from {len(PROVIDERS)} providers "
          f"in {len(SYNTAXES)} syntaxes; {len(alikes)} look-alikes in {len({c.group for c in alikes})} kinds")


if __name__ == "__main__":
    main()
