"""The organisation's marks as pages and mails carry them: escaped, a colour that can only be a colour, readable ink,
the logo as an inline image of the mail, the plain fallback when there is no branding."""

from __future__ import annotations

from functions.pages import brand_marks, branding_stylesheet
from shared.domain.codes import is_work_address
from shared.services.branding import Brand, Image, localisation_for
from shared.services.notifications.branded import LOGO_CONTENT_ID, with_brand

PNG = Image(b"\x89PNG\r\n\x1a\n", "image/png")


def test_a_page_shows_the_name_escaped_and_falls_back_to_the_services_name() -> None:
    marks = brand_marks(Brand('Contoso <script>"', sign_in_text="Call <b>us</b>", logo=PNG), "sv")
    assert marks["{{brandName}}"] == "Contoso &lt;script&gt;&quot;"
    assert 'alt="Contoso &lt;script&gt;&quot;"' in marks["{{brandLogo}}"]
    assert "lang=sv" in marks["{{brandLogo}}"] and marks["{{brandText}}"] == "Call &lt;b&gt;us&lt;/b&gt;"
    plain = brand_marks(Brand(""), "sv")
    assert plain["{{brandName}}"] == "Lösenordstjänst"  # the catalog's name of the service, in the page's language
    assert plain["{{brandLogo}}"] == "" and plain["{{brandTextHidden}}"] == " hidden"
    assert plain["{{brandNameI18n}}"] == ' data-i18n="brand"'


def test_the_stylesheet_holds_only_a_validated_colour_with_readable_ink() -> None:
    assert branding_stylesheet(Brand("x"), "en").strip() == ""
    dark = branding_stylesheet(Brand("x", background_colour="#0B3D6B", background=PNG), "en")
    assert "header { background: #0B3D6B; color: #ffffff; }" in dark and "backgroundImage?lang=en" in dark
    assert Brand("x", background_colour="#F4F5F7").ink == "#1b1b1f"


def test_a_mail_carries_the_name_and_the_logo_as_an_inline_image() -> None:
    html, inline = with_brand('<!DOCTYPE html><html><body style="x"><p>Hello</p></body></html>', Brand("Contoso", logo=PNG))
    assert html.index(f'src="cid:{LOGO_CONTENT_ID}"') < html.index("Hello") and "<strong>Contoso</strong>" in html
    assert [(i.content_id, i.content_type, i.data) for i in inline] == [(LOGO_CONTENT_ID, "image/png", PNG.data)]
    plain, none = with_brand("<body><p>Hi</p></body>", Brand("Contoso"))
    assert "cid:" not in plain and "<strong>Contoso</strong>" in plain and none == []
    assert with_brand("<body>x</body>", Brand("")) == ("<body>x</body>", [])


def test_swedish_takes_the_tenants_swedish_localisation_and_english_the_default() -> None:
    localisations = [{"id": "fr-FR"}, {"id": "sv-SE", "signInPageText": "Hej"}]
    assert localisation_for("sv", localisations) == {"id": "sv-SE", "signInPageText": "Hej"}
    assert localisation_for("en", localisations) is None


def test_a_work_address_is_any_address_at_the_organisations_domains() -> None:
    domains = ("contoso.example", "contosodemo.onmicrosoft.com")
    assert is_work_address("walt@contoso.example", domains)
    assert is_work_address("walt@Mail.Contoso.example", domains)
    assert not is_work_address("walt@notcontoso.example", domains)
    assert not is_work_address("walt@example.org", domains)
