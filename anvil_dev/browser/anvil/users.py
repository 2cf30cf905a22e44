"""`anvil.users` in client code: the login and signup dialogs, and the logged-in user."""

from browser import document

from anvil import _replay
from anvil import server


class AuthenticationFailed(server.AnvilWrappedError):
    pass


for _n in ("UserExists", "TooManyPasswordFailures", "EmailNotConfirmed", "AccountIsNotEnabled",
           "PasswordNotAcceptable", "MFARequired", "PasswordResetRequested"):
    globals()[_n] = type(_n, (AuthenticationFailed,), {"__module__": "anvil.users"})
    server.register_exception_type("anvil.users." + _n, globals()[_n])
server.register_exception_type("anvil.users.AuthenticationFailed", AuthenticationFailed)


def get_user(allow_remembered=True):
    return server.call_s("anvil.private.users.get_current_user")


def login_with_email(email, password, remember=False):
    return server.call("anvil.private.users.login_with_email", email, password, remember=remember)


def signup_with_email(email, password, remember=False):
    return server.call("anvil.private.users.signup_with_email", email, password, remember=remember)


def logout(invalidate_client_objects=False):
    server.call("anvil.private.users.logout")


def _field(parent, label, kind, name):
    wrap = document.createElement("label")
    wrap.className = "anvil-login-field"
    span = document.createElement("span")
    span.textContent = label
    inp = document.createElement("input")
    inp.setAttribute("type", kind)
    inp.setAttribute("name", name)
    inp.className = "form-control"
    wrap.appendChild(span)
    wrap.appendChild(inp)
    parent.appendChild(wrap)
    return inp


def _dialog(resume, signup, allow_cancel, show_signup_option, remember_by_default):
    overlay = document.createElement("div")
    overlay.className = "anvil-modal-backdrop"
    box = document.createElement("div")
    box.className = "anvil-modal anvil-login"
    overlay.appendChild(box)
    title = document.createElement("div")
    title.className = "anvil-modal-title"
    box.appendChild(title)
    email = _field(box, "Email", "email", "email")
    password = _field(box, "Password", "password", "password")
    repeat = _field(box, "Repeat password", "password", "password2")
    error = document.createElement("div")
    error.className = "anvil-login-error"
    box.appendChild(error)
    footer = document.createElement("div")
    footer.className = "anvil-modal-footer"
    box.appendChild(footer)
    go = document.createElement("button")
    go.className = "btn anvil-login-submit"
    footer.appendChild(go)
    switch = document.createElement("a")
    switch.className = "anvil-login-switch"
    switch.setAttribute("href", "javascript:void(0)")
    footer.appendChild(switch)
    mode = [signup]

    def render():
        s = mode[0]
        title.textContent = "Sign up" if s else "Log in"
        go.textContent = "Sign up" if s else "Log in"
        repeat.parentNode.style.display = "" if s else "none"
        switch.textContent = "Log in with an existing account" if s else "Sign up for a new account"
        switch.style.display = "" if show_signup_option or s else "none"
        error.textContent = ""

    def close(user):
        if overlay.parentNode is not None:
            overlay.parentNode.removeChild(overlay)
        resume(user)

    def submit(ev):
        ev.preventDefault()
        try:
            if mode[0]:
                if password.value != repeat.value:
                    error.textContent = "Passwords do not match. Try again."
                    return
                user = signup_with_email(email.value, password.value, remember=remember_by_default)
            else:
                user = login_with_email(email.value, password.value, remember=remember_by_default)
        except AuthenticationFailed as e:
            error.textContent = str(e)
            return
        close(user)

    go.bind("click", submit)
    password.bind("keydown", lambda ev: submit(ev) if ev.key == "Enter" else None)
    switch.bind("click", lambda ev: (mode.__setitem__(0, not mode[0]), render()))
    if allow_cancel:
        cancel = document.createElement("button")
        cancel.className = "btn anvil-login-cancel"
        cancel.textContent = "Cancel"
        cancel.bind("click", lambda ev: close(None))
        footer.appendChild(cancel)
    render()
    document.body.appendChild(overlay)
    email.focus()


def login_with_form(show_signup_option=True, remember_by_default=True, allow_remembered=True,
                    allow_cancel=False, **kwargs):
    """Show the login dialog; returns the user once logged in (None if cancelled)."""
    return _replay.wait_for(lambda resume: _dialog(resume, False, allow_cancel, show_signup_option,
                                                   remember_by_default))


def signup_with_form(allow_cancel=False, remember_by_default=True, **kwargs):
    """Show the signup dialog; returns the new user (None if cancelled)."""
    return _replay.wait_for(lambda resume: _dialog(resume, True, allow_cancel, True, remember_by_default))
