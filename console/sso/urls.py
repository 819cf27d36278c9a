"""The single sign-on routes, mounted at /oidc/ by console/urls.py: the login's start
and the provider's callback (register <console>/oidc/callback/ at the provider)."""

from django.urls import path

from .views import SsoCallbackView, SsoLoginView

urlpatterns = [
    path("authenticate/", SsoLoginView.as_view(), name="oidc_authentication_init"),
    path("callback/", SsoCallbackView.as_view(), name="oidc_authentication_callback"),
]
