"""Shared by the e-RS scripts: start `carehub up` on a free port, register an application
(API key, ASID, signing key), and sign users in with their virtual smartcards to get access
tokens by the separate flow (`carehub users sign-in`, then an RFC 8693 token exchange)."""

import json
import socket
import subprocess
import urllib.parse
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(carehub, data_dir, *extra):
    """Starts `carehub up` on a free port and waits until it is ready: (process, base URL)."""
    port = free_port()
    process = subprocess.Popen(
        [carehub, "up", "--port", str(port), "--data-dir", data_dir, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in process.stdout:
        if line.startswith("ready in"):
            break
    return process, f"http://127.0.0.1:{port}"


class Session:
    """An application of `int` registered in `data_dir`, able to sign users in."""

    def __init__(self, carehub, data_dir, base, name, ods, asid, key_file):
        self.carehub, self.data_dir, self.base, self.key_file = carehub, data_dir, base, key_file
        created = self.cli("apps", "create", "--name", name, "--env", "int", "--ods", ods)
        self.api_key = created.strip().splitlines()[-1].strip()
        app_id = created.split("(")[1].split(")")[0]
        self.cli("apps", "asid", "--app", app_id, "--asid", asid)
        self.cli("apps", "keygen", "--app", app_id, "--out", key_file)

    def cli(self, *args):
        return subprocess.run([self.carehub, *args, "--data-dir", self.data_dir],
                              capture_output=True, text=True, check=True).stdout

    def token(self, card, role, passcode="1234"):
        """An access token for the card's user acting in `role`."""
        id_token = self.cli("users", "sign-in", "--card", card, "--role", role, "--passcode", passcode,
                            "--client-id", self.api_key, "--public-url", self.base).strip()
        assertion = subprocess.run(
            [self.carehub, "apps", "jwt", "--api-key", self.api_key, "--private-key", self.key_file,
             "--aud", f"{self.base}/int/oauth2/token"], capture_output=True, text=True, check=True).stdout.strip()
        form = urllib.parse.urlencode({
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
            "subject_token": id_token,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        }).encode()
        with urllib.request.urlopen(urllib.request.Request(f"{self.base}/int/oauth2/token", data=form)) as response:
            return json.loads(response.read())["access_token"]
