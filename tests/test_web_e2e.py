"""End to end in a real headless Chromium: name a person, move a face, merge two people, compare a restoration.

The database is checked after each step. In CI (CI=true) a missing browser fails the test instead of skipping.
"""

from __future__ import annotations

import pytest
from PIL import Image

from tests.web_support import TOKEN, LiveServer, chromium_driver, copy_library, faces_of, people_by_id, wait_until

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install 'photokit[web]')")
pytest.importorskip("selenium", reason="selenium is not installed (pip install 'photokit[test]')")


@pytest.fixture
def browser():
    driver = chromium_driver()
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.mark.slow
def test_curating_people_and_comparing_a_restoration_in_a_real_browser(browser, face_recognition_library, tmp_path):
    from selenium.webdriver.common.by import By

    from photokit.db import open_database
    from photokit.db.models import EnhanceJob
    from photokit.web.app import create_app

    settings = copy_library(face_recognition_library, tmp_path / "home")
    db = open_database(settings)
    before, after = tmp_path / "old.png", tmp_path / "old_restored.png"
    Image.new("RGB", (120, 80), (150, 120, 90)).save(before)
    Image.new("RGB", (240, 160), (90, 120, 150)).save(after)
    with db.session() as session:
        job = EnhanceJob(batch_key="e2e", source_path=str(before), output_path=str(after), status="done", options={})
        job.report = {
            "faces": [
                {
                    "index": 0,
                    "person": "Barack",
                    "person_id": 1,
                    "status": "restored",
                    "prior_name": "personal",
                    "beta": 0.05,
                    "steps": 100,
                    "loss": 0.0123,
                }
            ],
            "warnings": [],
        }
        session.add(job)
        session.flush()
        restoration_id = job.id
    people = people_by_id(db)
    big, small = sorted(people, key=lambda pid: -people[pid]["faces"])[:2]

    with LiveServer(create_app(settings, token=TOKEN)) as server:
        # without the token: refused; with it: a cookie, and the token leaves the address bar
        browser.get(f"{server.url}/people")
        assert "access token needed" in browser.page_source
        browser.get_log("browser")  # that refusal (401) is logged as a failed load: start the log afresh
        browser.get(f"{server.url}/people?token={TOKEN}")
        assert "token=" not in browser.current_url
        cards = browser.find_elements(By.CSS_SELECTOR, "li.card[data-person]")
        assert {int(c.get_attribute("data-person")) for c in cards} >= {big, small}
        covers = browser.find_elements(By.CSS_SELECTOR, "li.card[data-person] img")
        wait_until(lambda: all(browser.execute_script("return arguments[0].naturalWidth", img) > 0 for img in covers))

        # 1. name a person
        browser.find_element(By.CSS_SELECTOR, f'li.card[data-person="{big}"] a').click()
        wait_until(lambda: browser.current_url.endswith(f"/people/{big}"))
        name = browser.find_element(By.ID, "name-input")
        name.clear()
        name.send_keys("Barack Obama")
        browser.find_element(By.CSS_SELECTOR, "#name-form button").click()
        wait_until(lambda: "Barack Obama" in browser.find_element(By.ID, "person-name").text)
        assert people_by_id(db)[big]["name"] == "Barack Obama"

        # 2. move a face: select it on the big person's page, move it to the small one
        moved = faces_of(db, big)[-1]
        browser.find_element(By.CSS_SELECTOR, f'li[data-face="{moved}"] input.pick').click()
        assert "1 selected" in browser.find_element(By.ID, "selected-count").text
        browser.find_element(By.ID, "move-input").send_keys(str(small))
        browser.find_element(By.ID, "move-button").click()
        wait_until(lambda: "moved 1 face" in browser.page_source)
        assert moved in faces_of(db, small) and moved not in faces_of(db, big)

        # 3. merge two people: the small person into Barack Obama, by name
        small_faces = faces_of(db, small)
        browser.get(f"{server.url}/people/{small}")
        browser.find_element(By.ID, "merge-input").send_keys("Barack Obama")
        browser.find_element(By.CSS_SELECTOR, "#merge-form button").click()
        wait_until(lambda: browser.current_url.split("?")[0].endswith(f"/people/{big}"))
        assert small not in people_by_id(db) and set(small_faces) <= set(faces_of(db, big))

        # 4. a restoration's before/after at full resolution
        browser.get(f"{server.url}/restorations")
        browser.find_element(By.CSS_SELECTOR, f'a[href="/restorations/{restoration_id}"]').click()
        after_img = browser.find_element(By.ID, "after-image")
        before_img = browser.find_element(By.ID, "before-image")
        wait_until(lambda: browser.execute_script("return arguments[0].naturalWidth", after_img) == 240)
        assert browser.execute_script("return arguments[0].naturalWidth", before_img) == 120
        browser.find_element(By.ID, "actual-size").click()
        assert browser.execute_script("return arguments[0].clientWidth", after_img) == 240  # 1:1 with the output
        slider = browser.find_element(By.ID, "slider")
        browser.execute_script("arguments[0].value = 20; arguments[0].dispatchEvent(new Event('input'))", slider)
        clip = browser.find_element(By.ID, "before-clip")
        assert browser.execute_script("return arguments[0].style.width", clip) == "20%"
        assert "0.0123" in browser.page_source  # the per-face report
        logs = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
        assert not logs, [e["message"] for e in logs]  # no blocked script or style (CSP), no failed request
    db.dispose()
