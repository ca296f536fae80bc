"""Write positives.jsonl and negatives.jsonl for tests/test_secrets.py.

Every secret is random characters in the provider's documented shape (prefix, length,
alphabet): none is a real credential. GitHub-style tokens are made to FAIL their CRC32
checksum on purpose. Run once; the output is committed:

    python tests/data/secrets/make_corpus.py
"""
from __future__ import annotations

import base64
import binascii
import json
import random
import string
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
rng = random.Random(20260521)

LOWER, UPPER, DIGITS = string.ascii_lowercase, string.ascii_uppercase, string.digits
B62 = DIGITS + UPPER + LOWER
HEX = "0123456789abcdef"
B64 = UPPER + LOWER + DIGITS + "+/"
B64URL = UPPER + LOWER + DIGITS + "-_"
# a random string could spell one of these by chance and look like a placeholder
AVOID = ("example", "xxxx", "your", "fake", "dummy", "sample", "12345678", "abcdefgh", "test")


def rand(alphabet: str, n: int) -> str:
    while True:
        value = "".join(rng.choice(alphabet) for _ in range(n))
        if not any(a in value.lower() for a in AVOID):
            return value


def github_checksum(body30: str) -> str:
    number, digits = binascii.crc32(body30.encode()), ""
    while number:
        number, rest = divmod(number, 62)
        digits = B62[rest] + digits
    return digits.rjust(6, "0")


def github_classic() -> str:
    body = rand(B62, 30)
    good = github_checksum(body)
    tail = rand(B62, 6)
    while tail == good:  # deliberately invalid: these must never be real tokens
        tail = rand(B62, 6)
    return f"gh{rng.choice('pousr')}_{body}{tail}"


def pem(label: str, nbytes: int) -> str:
    body = base64.b64encode(rng.randbytes(nbytes)).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"])


def jwt() -> str:
    def b64url(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")
    header = b64url(json.dumps({"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}).encode())
    claims = {"sub": rand(DIGITS, 10), "iat": rng.randint(1.6e9, 1.8e9), "scope": "read write"}
    return f"{header}.{b64url(json.dumps(claims).encode())}.{b64url(rng.randbytes(32))}"


def discord() -> str:
    user_id = str(rng.randint(10**17, 10**19))
    first = base64.b64encode(user_id.encode()).decode().rstrip("=")
    return f"{first}.{rand(B64URL, 6)}.{rand(B64URL, 38)}"


def password() -> str:
    return rand(LOWER, 5).capitalize() + rand(DIGITS, 3) + rng.choice("!#%&+") + rand(LOWER + UPPER, 4)


PASSPHRASE_WORDS = "correct horse battery staple orbit maple cactus violet thunder pencil glacier harbor velvet".split()


def passphrase() -> str:
    """xkcd-style: letters only, no digit or symbol to give it away."""
    return "".join(rng.sample(PASSPHRASE_WORDS, 4))


# kind -> (secret factory, context templates). {s} is the secret; {n} a fitting variable name.
Kind = tuple[Callable[[], str], list[str]]
TOKEN_CONTEXTS = [
    "- The deploy script reads `{s}` from the environment (rotate after the demo).",
    "{n}={s}",
    'export {n}="{s}"',
    '{{"{n_lower}": "{s}", "region": "eu-west-1"}}',
    "  {n_lower}: {s}",
    'client = Client(api_key="{s}")',
    "User pasted {s} in chat; saved it here so the next session can reuse it.",
]

KINDS: dict[str, tuple[str, Kind]] = {
    "github-classic": ("github-token", (github_classic, TOKEN_CONTEXTS)),
    "github-fine-grained": ("github-fine-grained-pat",
                            (lambda: f"github_pat_{rand(B62, 22)}_{rand(B62, 59)}", TOKEN_CONTEXTS)),
    "gitlab-pat": ("gitlab-token", (lambda: f"glpat-{rand(B62 + '_-', 20)}", TOKEN_CONTEXTS)),
    "gitlab-runner": ("gitlab-token", (lambda: f"glrt-{rand(B62 + '_', 20)}",
                                       ["runner registration: `gitlab-runner register --token {s}`"])),
    "aws-access-key-id": ("aws-access-key-id", (lambda: rng.choice(["AKIA", "ASIA"]) + rand(UPPER + "234567", 16),
                                                ["aws_access_key_id = {s}", "AWS_ACCESS_KEY_ID={s}",
                                                 "The CI user key id is {s} (ask ops for the secret)."])),
    "aws-secret-access-key": ("aws-secret-access-key", (lambda: rand(B64, 40),
                                                        ["aws_secret_access_key = {s}",
                                                         'export AWS_SECRET_ACCESS_KEY="{s}"',
                                                         '"SecretAccessKey": "{s}",'])),
    "gcp-api-key": ("gcp-api-key", (lambda: "AIza" + rand(B62 + "_-", 35), TOKEN_CONTEXTS)),
    "gcp-service-account": ("gcp-service-account-key", (
        lambda: pem("PRIVATE KEY", 600).replace("\n", "\\n") + "\\n",
        ['  "private_key": "{s}",'])),
    "azure-storage": ("azure-storage-key", (lambda: rand(B64, 86) + "==", [
        "DefaultEndpointsProtocol=https;AccountName=notesstore;AccountKey={s};EndpointSuffix=core.windows.net"])),
    "azure-ad-client-secret": ("azure-ad-client-secret", (
        lambda: rand(B62, 3) + rand(DIGITS, 1) + "Q~" + rand(B62 + "_~.-", 34),
        ["AZURE_CLIENT_SECRET={s}", "- Entra app secret: {s} (expires 2027)"])),
    "anthropic-api": ("anthropic-api-key", (lambda: f"sk-ant-api03-{rand(B64URL, 93)}AA", TOKEN_CONTEXTS)),
    "anthropic-admin": ("anthropic-admin-key", (lambda: f"sk-ant-admin01-{rand(B64URL, 93)}AA", TOKEN_CONTEXTS)),
    "anthropic-oauth": ("anthropic-oauth-token", (lambda: f"sk-ant-oat01-{rand(B64URL, 93)}AA", TOKEN_CONTEXTS)),
    "openai-project": ("openai-api-key", (lambda: f"sk-proj-{rand(B64URL, 74)}T3BlbkFJ{rand(B64URL, 74)}",
                                          TOKEN_CONTEXTS)),
    "openai-legacy": ("openai-api-key", (lambda: f"sk-{rand(B62, 20)}T3BlbkFJ{rand(B62, 20)}", TOKEN_CONTEXTS)),
    "openai-service-account": ("openai-api-key", (lambda: f"sk-svcacct-{rand(B64URL, 64)}", TOKEN_CONTEXTS)),
    "huggingface": ("huggingface-token", (lambda: "hf_" + rand(UPPER + LOWER, 34), TOKEN_CONTEXTS)),
    "perplexity": ("perplexity-api-key", (lambda: "pplx-" + rand(B62, 48), TOKEN_CONTEXTS)),
    "groq": ("groq-api-key", (lambda: "gsk_" + rand(B62, 52), TOKEN_CONTEXTS)),
    "replicate": ("replicate-api-token", (lambda: "r8_" + rand(B62, 37), TOKEN_CONTEXTS)),
    "cohere-context": ("cohere-api-key", (lambda: rand(B62, 40), ["COHERE_API_KEY={s}", "co_api_key: {s}"])),
    "mistral-context": ("mistral-api-key", (lambda: rand(B62, 32), ["MISTRAL_API_KEY={s}"])),
    "slack-bot": ("slack-token", (lambda: f"xoxb-{rand(DIGITS, 12)}-{rand(DIGITS, 13)}-{rand(B62, 24)}",
                                  TOKEN_CONTEXTS)),
    "slack-user": ("slack-token", (lambda: f"xoxp-{rand(DIGITS, 12)}-{rand(DIGITS, 12)}-{rand(DIGITS, 13)}-{rand(HEX, 32)}",
                                   TOKEN_CONTEXTS)),
    "slack-app": ("slack-token", (lambda: f"xapp-1-A{rand(UPPER + DIGITS, 10)}-{rand(DIGITS, 13)}-{rand(HEX, 64)}",
                                  TOKEN_CONTEXTS)),
    "slack-webhook": ("slack-webhook", (lambda: f"hooks.slack.com/services/T{rand(UPPER + DIGITS, 8)}/B{rand(UPPER + DIGITS, 10)}/{rand(B62, 24)}",
                                        ["SLACK_WEBHOOK_URL=https://{s}", "- alerts go to https://{s}"])),
    "stripe-live": ("stripe-secret-key", (lambda: "sk_live_" + rand(B62, 99), TOKEN_CONTEXTS)),
    "stripe-restricted": ("stripe-secret-key", (lambda: "rk_live_" + rand(B62, 24), TOKEN_CONTEXTS)),
    "stripe-test": ("stripe-secret-key", (lambda: "sk_test_" + rand(B62, 24), TOKEN_CONTEXTS)),
    "twilio-api-key": ("twilio-api-key", (lambda: "SK" + rand(HEX, 32), TOKEN_CONTEXTS)),
    "twilio-auth-token": ("twilio-auth-token", (lambda: rand(HEX, 32), [
        "TWILIO_AUTH_TOKEN={s}", "twilio:\n  account_sid: AC" + rand(HEX, 32) + "\n  auth_token: {s}"])),
    "sendgrid": ("sendgrid-api-key", (lambda: f"SG.{rand(B64URL, 22)}.{rand(B64URL, 43)}", TOKEN_CONTEXTS)),
    "npm": ("npm-token", (lambda: "npm_" + rand(B62, 36), ["//registry.npmjs.org/:_authToken={s}", *TOKEN_CONTEXTS])),
    "pypi": ("pypi-token", (lambda: "pypi-AgEIcHlwaS5vcmc" + rand(B64URL, 150), ["[pypi]\n  username = __token__\n  password = {s}", *TOKEN_CONTEXTS])),
    "digitalocean": ("digitalocean-token", (lambda: "dop_v1_" + rand(HEX, 64), TOKEN_CONTEXTS)),
    "vault": ("vault-token", (lambda: "hvs." + rand(B64URL, 91), ["VAULT_TOKEN={s}", "vault login {s}"])),
    "discord-bot": ("discord-bot-token", (discord, ["DISCORD_TOKEN={s}", "bot.run('{s}')"])),
    "telegram-bot": ("telegram-bot-token", (lambda: f"{rng.randint(10**8, 10**10 - 1)}:AA{rand(B64URL, 33)}",
                                            ["TELEGRAM_BOT_TOKEN={s}", "https://api.telegram.org/bot{s}/getMe"])),
    "shopify": ("shopify-token", (lambda: "shpat_" + rand(HEX, 32), TOKEN_CONTEXTS)),
    "pem-rsa": ("private-key", (lambda: pem("RSA PRIVATE KEY", 600), ["Key for the build box:\n\n{s}\n"])),
    "pem-ec": ("private-key", (lambda: pem("EC PRIVATE KEY", 121), ["```\n{s}\n```"])),
    "pem-pkcs8": ("private-key", (lambda: pem("PRIVATE KEY", 300), ["{s}"])),
    "pem-encrypted": ("private-key", (lambda: pem("ENCRYPTED PRIVATE KEY", 400), ["cat key.pem\n{s}"])),
    "openssh": ("private-key", (lambda: pem("OPENSSH PRIVATE KEY", 300), ["~/.ssh/id_deploy:\n{s}"])),
    "pgp": ("private-key", (lambda: pem("PGP PRIVATE KEY BLOCK", 500).replace("-----\n", "-----\nVersion: GnuPG v2\n\n", 1),
                            ["{s}"])),
    "age": ("age-secret-key", (lambda: "AGE-SECRET-KEY-1" + rand("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58),
                               ["# created: 2026-03-02\n{s}"])),
    "jwt": ("jwt", (jwt, ["session cookie: {s}", 'token = "{s}"'])),
    "url-postgres": ("url-credentials", (lambda: password(), ["DATABASE_URL=postgres://app:{s}@db.internal:5432/notes"])),
    "url-mysql": ("url-credentials", (lambda: password(), ["mysql://report:{s}@10.0.0.12/reports"])),
    "url-mongodb": ("url-credentials", (lambda: password(), ["MONGO_URI=mongodb+srv://svc:{s}@cluster0.ab1cd.mongodb.net/app"])),
    "url-redis": ("url-credentials", (lambda: password(), ["REDIS_URL=redis://:{s}@cache:6379/0"])),
    "url-amqp": ("url-credentials", (lambda: password(), ["amqp://worker:{s}@rabbit.local:5672/"])),
    "url-https": ("url-credentials", (lambda: password(), ["git clone https://deploy:{s}@git.corp.local/team/app.git"])),
    "bearer-header": ("authorization-header", (lambda: rand(B64URL, 40), [
        'curl -H "Authorization: Bearer {s}" https://api.internal/v1/me',
        "Authorization: Bearer {s}"])),
    "basic-header": ("authorization-header", (lambda: base64.b64encode(f"svc:{password()}".encode()).decode(),
                                              ["Authorization: Basic {s}"])),
    "token-header": ("authorization-header", (lambda: rand(HEX, 40), ['-H "Authorization: token {s}"'])),
    "curl-user": ("cli-user-password", (password, ["curl -u admin:{s} https://jenkins.local/api/json"])),
    "env-password": ("secret-assignment", (password, ["DB_PASSWORD={s}", "export POSTGRES_PASSWORD='{s}'",
                                                      '  "password": "{s}",', "password = \"{s}\""])),
    "env-secret": ("secret-assignment", (lambda: rand(B62, 40), ["SECRET_KEY={s}", "JWT_SECRET: {s}",
                                                                  "clientSecret: '{s}'", "api_key = \"{s}\""])),
    "env-hex-secret": ("secret-assignment", (lambda: rand(HEX, 64), ["SESSION_SECRET={s}", "ENCRYPTION_KEY={s}"])),
    "gcp-oauth-client-secret": ("gcp-oauth-client-secret", (lambda: "GOCSPX-" + rand(B64URL, 28),
                                                            ['  "client_secret": "{s}",', *TOKEN_CONTEXTS])),
    "openrouter": ("openrouter-api-key", (lambda: "sk-or-v1-" + rand(HEX, 64), TOKEN_CONTEXTS)),
    "xai": ("xai-api-key", (lambda: "xai-" + rand(B62, 80), TOKEN_CONTEXTS)),
    "stripe-webhook-secret": ("stripe-webhook-secret", (lambda: "whsec_" + rand(B62, 32), TOKEN_CONTEXTS)),
    "linear": ("linear-api-key", (lambda: "lin_api_" + rand(B62, 40), TOKEN_CONTEXTS)),
    "notion": ("notion-token", (lambda: "ntn_" + rand(B62, 46), TOKEN_CONTEXTS)),
    "dockerhub": ("dockerhub-token", (lambda: "dckr_pat_" + rand(B64URL, 27),
                                      ["echo {s} | docker login -u ci --password-stdin", *TOKEN_CONTEXTS])),
    "langsmith": ("langsmith-api-key", (lambda: f"lsv2_pt_{rand(HEX, 32)}_{rand(HEX, 10)}", TOKEN_CONTEXTS)),
    "postman": ("postman-api-key", (lambda: f"PMAK-{rand(HEX, 24)}-{rand(HEX, 34)}", TOKEN_CONTEXTS)),
    "discord-webhook": ("discord-webhook", (
        lambda: f"discord.com/api/webhooks/{rng.randint(10**17, 10**19)}/{rand(B64URL, 68)}",
        ["DISCORD_WEBHOOK=https://{s}", "- build alerts post to https://{s}"])),
    "mailchimp": ("mailchimp-api-key", (lambda: f"{rand(HEX, 32)}-us{rng.randint(1, 21)}", TOKEN_CONTEXTS)),
    "azure-sas": ("azure-sas-token", (lambda: rand(B64, 43).replace("+", "%2B").replace("/", "%2F") + "%3D", [
        "https://notes.blob.core.windows.net/backup?sv=2022-11-02&ss=b&srt=co&sp=rl&se=2027-01-01&sig={s}"])),
    "twilio-client": ("twilio-auth-token", (lambda: rand(HEX, 32),
                                            ['client = Client("AC' + rand(HEX, 32) + '", "{s}")'])),
    "markdown-password": ("secret-assignment", (password, ["**Password:** {s}", "- **DB password**: `{s}`"])),
    "netrc": ("secret-assignment", (password, ["machine api.internal.dev login deploy password {s}"])),
    "xml-password": ("secret-assignment", (password, ["<server><id>nexus</id><password>{s}</password></server>"])),
    "table-password": ("secret-assignment", (password, ["| DB_PASSWORD | `{s}` | rotated 2026-04 |"])),
    "k8s-env": ("secret-assignment", (lambda: rand(B62, 32), ["env:\n  - name: API_TOKEN\n    value: \"{s}\""])),
    "cli-flag": ("secret-assignment", (lambda: rand(B62, 32), ["mytool sync --token {s} --verbose",
                                                              "pgcli --password {s} -h db.internal"])),
    "generic-high-entropy": ("generic-high-entropy", (lambda: rand(B62, 40), [
        "Staging value (do not share): {s}", "- value to paste in the dashboard (keep it private): `{s}`"])),
    "docker-login": ("cli-password", (password, ["docker login -u ci -p {s} registry.corp.local",
                                                 "podman login --username deploy -p '{s}' quay.io"])),
    "docker-login-flag": ("secret-assignment", (lambda: rand(B62, 32),
                                                ["docker login --username ci --password {s} ghcr.io"])),
    "mysql-glued": ("cli-password", (password, ["mysql -u root -p{s} -h db.internal app",
                                                "mysqldump -uapp -p'{s}' reports > reports.sql"])),
    "mysql-flag": ("secret-assignment", (password, ["mysql --user=app --password={s} reports"])),
    "env-passphrase": ("secret-assignment", (passphrase, ["DB_PASSWORD={s}", "- wifi password: {s}",
                                                          'export MYSQL_PASSWORD="{s}"'])),
}


def main() -> None:
    positives = []
    for kind, (rule, (make, contexts)) in KINDS.items():
        per_kind = 3 if len(contexts) > 1 else 2
        for i in range(per_kind):
            secret, context = make(), contexts[i % len(contexts)] if i < len(contexts) else rng.choice(contexts)
            name = kind.upper().replace("-", "_") + ("_TOKEN" if "token" not in kind else "")
            text = context.format(s=secret, n=name, n_lower=name.lower())
            positives.append({"kind": kind, "rule": rule, "secret": secret, "text": text})
    negatives = [{"kind": kind, "text": text} for kind, text in negative_cases()]
    for name, rows in (("positives.jsonl", positives), ("negatives.jsonl", negatives)):
        (HERE / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"{len(positives)} positives in {len(KINDS)} kinds, {len(negatives)} negatives")


def negative_cases() -> list[tuple[str, str]]:
    sha1, sha256 = rand(HEX, 40), rand(HEX, 64)
    english_b64 = base64.b64encode(b"Remember to run the migrations before deploying the app.").decode()
    png = base64.b64encode(rng.randbytes(300)).decode()
    integrity = base64.b64encode(rng.randbytes(64)).decode()
    ssh_pub = "AAAAC3NzaC1lZDI1NTE5AAAAI" + rand(B64, 43)
    uuid = "-".join(rand(HEX, n) for n in (8, 4, 4, 4, 12))
    return [
        ("placeholder", "OPENAI_API_KEY=YOUR_API_KEY"),
        ("placeholder", "export GITHUB_TOKEN=<token>"),
        ("placeholder", "API_TOKEN=${API_TOKEN}"),
        ("placeholder", 'password: "{{ vault_db_password }}"'),
        ("placeholder", "password: changeme"),
        ("placeholder", "SECRET_KEY=****************"),
        ("placeholder", "token: ..."),
        ("placeholder", "ANTHROPIC_API_KEY=sk-ant-api03-..."),
        ("placeholder", "ANTHROPIC_API_KEY=sk-ant-api03-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
        ("placeholder", "Set `GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx` in your shell."),
        ("placeholder", "STRIPE_KEY=sk_live_EXAMPLEKEY0000000000000000"),
        ("placeholder", "slack: xoxb-your-bot-token-here"),
        ("placeholder", "DATABASE_URL=postgres://user:password@localhost:5432/db"),
        ("placeholder", "redis://:${REDIS_PASSWORD}@cache:6379"),
        ("placeholder", "amqp://guest:guest@localhost:5672/"),
        ("placeholder", 'curl -H "Authorization: Bearer $TOKEN" https://api.github.com/user'),
        ("placeholder", "Authorization: Bearer <your-token>"),
        ("placeholder", 'curl -u "$USER:$PASS" https://ci.local'),
        ("placeholder", "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----"),
        ("placeholder", "password:"),
        ("placeholder", 'password: ""'),
        ("placeholder", "password = None"),
        ("vendor-example", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE"),
        ("vendor-example", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ("vendor-example", "stripe.api_key = 'sk_test_4eC39HqLyjWDarjtT1zdp7dc'"),
        ("vendor-example", "Stripe docs use sk_test_26PHem9AhJZvU623DfE1x4sd in every snippet."),
        ("vendor-example", "jwt.io sample: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"),
        ("publishable", f"STRIPE_PUBLISHABLE_KEY=pk_live_{rand(B62, 24)}"),
        ("publishable", f"const stripe = Stripe('pk_test_{rand(B62, 24)}');"),
        ("public-key", pem("PUBLIC KEY", 294)),
        ("public-key", pem("CERTIFICATE", 400)),
        ("public-key", f"ssh-ed25519 {ssh_pub} me@laptop"),
        ("public-key", f"- deploy key (public): `ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ{rand(B64, 80)} ci@build`"),
        ("env-reference", "DB_PASSWORD=$DB_PASSWORD"),
        ("env-reference", 'token = os.environ["GITHUB_TOKEN"]'),
        ("env-reference", 'api_key = os.getenv("OPENAI_API_KEY")'),
        ("env-reference", "const secret = process.env.JWT_SECRET;"),
        ("env-reference", "password: !vault |"),
        ("env-reference", "SECRET_KEY = settings.SECRET_KEY"),
        ("env-reference", "password = getpass.getpass()"),
        ("identifier", "token_url: https://auth.example.com/oauth2/token"),
        ("identifier", "api_version: 2024-06-01"),
        ("identifier", f"public_key_id: {rand(HEX, 16)}"),
        ("identifier", f'"private_key_id": "{sha1}",'),
        ("identifier", "max_tokens: 4096"),
        ("identifier", "secret_name: prod/db/credentials"),
        ("identifier", "password_min_length: 12"),
        ("identifier", "Call `getAccessTokenFromRefreshTokenWithRetryPolicy2` after login."),
        ("identifier", "The class AbstractSingletonProxyFactoryBeanConfigurationProvider handles it."),
        ("identifier", "tokenizer: cl100k_base"),
        ("identifier", "key: user.profile.settings.title"),
        ("identifier", "primary_key: customer_account_identifier_v2"),
        ("identifier", "The token expired, so the user must log in again."),
        ("identifier", "The password is stored in 1Password under 'staging db'."),
        ("path", "SSH_KEY_PATH=~/.ssh/id_ed25519"),
        ("path", "ssh_key: /home/dev/.ssh/deploy_key_2024"),
        ("path", "See src/components/settings/UserNotificationPreferencesPanel2.tsx for details."),
        ("hash", f"- fixed in commit {sha1}"),
        ("hash", f"sha256: {sha256}"),
        ("hash", f"md5sum: {rand(HEX, 32)}  notes.tar.gz"),
        ("hash", f"image: ghcr.io/acme/app@sha256:{rand(HEX, 64)}"),
        ("hash", f'"integrity": "sha512-{integrity}"'),
        ("uuid", f"session id {uuid}"),
        ("uuid", f"tenant_id: {'-'.join(rand(HEX, n) for n in (8, 4, 4, 4, 12))}"),
        ("data-uri", f"![logo](data:image/png;base64,{png})"),
        ("base64-text", f"Encoded note: {english_b64}"),
        ("version", "pip install 'requests==2.32.3' 'urllib3>=2.2.1,<3'"),
        ("version", '"dependencies": {"react": "^18.3.1", "@types/node": "20.14.10"}'),
        ("url", "Design doc: https://docs.google.com/document/d/1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms/edit"),
        ("url", "https://github.com/acme/notes/blob/4f2a9c1e7b3d8a6f0e5c2b1a9d8e7f6a5b4c3d2e/README.md"),
        ("prose", "We rotated the API key last week; the new one lives in the vault."),
        ("prose", "Use Basic authentication only for the local dev server."),
        ("prose", "Bearer tokens expire after 15 minutes in staging."),
        ("prose", "docker run -u 1000:1000 -v $PWD:/work image"),
        ("prose", "git push -u origin feature/secret-scanner"),
        ("code", "if password == confirm_password:\n    save(user)"),
        ("code", "password = request.form['password']"),
        ("code", "headers = {'Authorization': f'Bearer {token}'}"),
        ("code", "csrf_token: 8f14e45fceea167a5a36dedd4bea2543"),
        ("code", "next_page_token: CiAKGjBpNDd2Nmp2Zml2cXRwYjBpOXA0c2Z6Y2kSAhgB"),
        ("code", "PASSWORD_REGEX = r'^(?=.*[A-Z])(?=.*\\d)(?=.*[!@#$%]).{12,}$'"),
        ("code", "SECRET_KEY = os.environ.get('SECRET_KEY', 'dev')"),
        ("code", "password_hash: $2b$12$" + rand(B62 + "./", 53)),
        ("identifier", "TOKEN_TTL=3600"),
        ("identifier", "primary key: customer_account_id"),
        ("identifier", "secretKeyRef: {name: db-credentials, key: password}"),
        ("identifier", "See the **Password policy:** at least 12 characters."),
        ("placeholder", "token: ${{ secrets.GITHUB_TOKEN }}"),
        ("placeholder", "api_key: !Ref ApiKeyParameter"),
        ("placeholder", "GOOGLE_API_KEY=AIzaSy_YOUR_KEY_HERE"),
        ("cli", "docker login --password-stdin ghcr.io < token.txt"),
        ("cli", "psql --password-file /run/secrets/db_password"),
        ("cli", "mytool --token-file ~/.config/mytool/token"),
        ("short", "prefix check: tokens start with ghp_ or github_pat_ (see docs)"),
        ("short", "pip install scikit-learn  # imported as sklearn, not sk-learn"),
        ("hash", f"git lfs: oid sha256:{rand(HEX, 64)} size 1048576"),
        ("url", f"https://cdn.example.net/file.js?sig={rand(B62, 43)}"),
        ("hash", f"github.com/stretchr/testify v1.9.0 h1:{base64.b64encode(rng.randbytes(32)).decode()}"),
        ("identifier", f"arn:aws:iam::123456789012:role/service-role/MyLambdaRole-{rand(B62, 12)}"),
        ("identifier", f"kid: {rand(B62, 43)}"),
        ("code", "Authorization: Basic $(echo -n user:pass | base64)"),
        ("code", "cat tokens.txt | grep -v expired | sort"),
        ("public-key", f"ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBB{rand(B64, 64)} me@host"),
        ("public-key", pem("PGP PUBLIC KEY BLOCK", 240)),
        ("public-key", f"The server key fingerprint is SHA256:{rand(B64, 43)}."),
        ("placeholder", "DB_PASSWORD=changeme"),
        ("placeholder", "password=password"),
        ("placeholder", "DB_PASSWORD=<password>"),
        ("placeholder", "POSTGRES_PASSWORD=mysecretpassword"),
        ("env-reference", "export PGPASSWORD=$PASSWORD"),
        ("env-reference", "DB_PASSWORD=${DB_PASSWORD}"),
        ("cli", "docker login -u ci -p $DOCKER_PASSWORD registry.corp.local"),
        ("cli", 'docker login -u ci -p "$(cat ~/.docker-token)" ghcr.io'),
        ("cli", "docker run -p 8080:80 -e MYSQL_ROOT_PASSWORD_FILE=/run/secrets/db mysql:8"),
        ("cli", "mysql -u root -p app  # asks for the password"),
        ("cli", "mysql -uroot -p$MYSQL_ROOT_PASSWORD -h db.internal app"),
        ("cli", "mysql -h db.internal -P3306 -u report -p reports"),
        ("prose", "Build the mysql client with gcc -pthread -O2."),
        ("prose", "The password is automatically rotated every 90 days."),
        ("prose", "password: required for the staging database, see the runbook"),
    ]


if __name__ == "__main__":
    main()
