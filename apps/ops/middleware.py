"""Response headers for browsers that Django does not set itself: Content-Security-Policy (production settings).

Django 5.2 has no CSP support of its own (it arrives in 6.0), hence this one-line middleware.
"""

from django.conf import settings


class ContentSecurityPolicyMiddleware:
    """Adds NEXUS_CONTENT_SECURITY_POLICY to every response that does not carry a policy of its own."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = settings.NEXUS_CONTENT_SECURITY_POLICY

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy
        return response
