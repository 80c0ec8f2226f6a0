"""What the policy accepts as an address: a DNS label, an email address and the longest URL and address."""

from __future__ import annotations

import re

DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL = re.compile(rf"^[^@\s]{{1,64}}@{DNS_LABEL}(?:\.{DNS_LABEL})+$")
MAX_URL_LENGTH = 2048
MAX_EMAIL_LENGTH = 254
