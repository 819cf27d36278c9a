"""Single sign-on (OpenID Connect) for the admin and the browsable API, on
mozilla-django-oidc: the provider's endpoints from its discovery document
(provider.py), the login and callback views (views.py, urls.py, mounted at
/oidc/ by console/urls.py), the authentication backends (backends.py: the
provider's users, with their roles mapped from a claim by roles.py; and the
password login, which LOCAL_LOGIN can close to all but superusers), the link
from the provider's subject to an account (models.py), the audit of every
break-glass login (signals.py; single sign-on's is views.py's) and the login
pages' button (context.py).

Part of the console's shared web kit: it never imports the operations console.
"""
