from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from . import hooks, services
from .forms import DISPLAY_NAME_FUTURE_NOTE, ApiTokenForm, ProfileForm


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        for hook in hooks.display_name_saved:
            hook(request.user)
        messages.success(request, "Your profile was saved.")
        return redirect("accounts:profile")
    return render(
        request,
        "accounts/profile.html",
        {
            "form": form,
            "future_note": DISPLAY_NAME_FUTURE_NOTE,
            "token_form": ApiTokenForm(),
            "tokens": request.user.api_tokens.all(),
            "new_token": request.session.pop("new_api_token", None),
        },
    )


@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST)
    if form.is_valid():
        _, token = services.api_token_create(user=request.user, name=form.cleaned_data["name"])
        # Shown once on the next page, then gone from the session.
        request.session["new_api_token"] = token
        messages.success(request, "Token created. Copy it now: it will not be shown again.")
    else:
        messages.error(request, "Give the token a name.")
    return redirect("accounts:profile")


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    if services.api_token_revoke(user=request.user, token_id=token_id):
        messages.success(request, "Token revoked.")
    return redirect("accounts:profile")


@login_required
def data_export(request: HttpRequest) -> HttpResponse:
    # Streamed: the export is produced while it is sent, never built in memory.
    response = StreamingHttpResponse(
        services.user_data_export_chunks(user=request.user), content_type="application/json"
    )
    response["Content-Disposition"] = 'attachment; filename="shipwright-my-data.json"'
    return response


DELETE_CONFIRM_MISMATCH = "Type your e-mail address exactly to confirm."


@login_required
def account_delete(request: HttpRequest) -> HttpResponse:
    error = None
    if request.method == "POST":
        if request.POST.get("confirm", "").strip().lower() == request.user.email.lower():
            from django.contrib.auth import logout

            user = request.user
            logout(request)
            services.user_delete(user=user)
            messages.success(request, "Your account and your data were deleted; your certificates were revoked.")
            return redirect("courses:catalog")
        error = DELETE_CONFIRM_MISMATCH
    return render(request, "accounts/delete.html", {"error": error}, status=400 if error else 200)
