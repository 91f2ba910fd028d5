"""URLs of the session tests' views."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login_view, name="login"),
    path("dashboard/", views.dashboard_view, name="dashboard"),
    path("logout/", views.logout_view, name="logout"),
    path("update/", views.update_session, name="update_session"),
    path("sign-in/", views.sign_in, name="sign_in"),
    path("sign-out/", views.sign_out, name="sign_out"),
    path("whoami/", views.whoami, name="whoami"),
    path("change-password/", views.change_password, name="change_password"),
    path("counter/", views.counter, name="counter"),
    path("acounter/", views.acounter, name="acounter"),
    path("alogout/", views.alogout, name="alogout"),
    path("aconcurrent-logout/", views.aconcurrent_logout, name="aconcurrent_logout"),
]
