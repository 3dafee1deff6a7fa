"""The booking as an iCalendar file (RFC 5545), for the citizen's own calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from icalendar import Alarm, Calendar, Event

from indgang.booking.bookings import Booking, BookingState
from indgang.booking.texts import ics_texts
from indgang.settings import Settings

PRODID = "-//Indgang//tovholder booking//DA"
REMIND_BEFORE = timedelta(hours=1)  # the calendar's own alarm; the SMS comes the day before


def booking_ics(booking: Booking, settings: Settings, now: datetime | None = None) -> bytes:
    summary, description = ics_texts(booking, settings)
    event = Event()
    event.add("uid", f"{booking.id}@indgang")
    event.add("dtstamp", now or datetime.now(UTC))
    event.add("dtstart", booking.start.astimezone(UTC))
    event.add("dtend", booking.end.astimezone(UTC))
    event.add("summary", summary)
    event.add("description", description)
    # A moved booking keeps its uid; the sequence tells calendars this version is newer.
    event.add("sequence", int(booking.updated_at.timestamp()))
    event.add("status", "CANCELLED" if booking.state == BookingState.CANCELLED else "CONFIRMED")
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", summary)
    alarm.add("trigger", -REMIND_BEFORE)
    event.add_component(alarm)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if booking.state == BookingState.CANCELLED else "PUBLISH")
    calendar.add_component(event)
    return calendar.to_ical()
